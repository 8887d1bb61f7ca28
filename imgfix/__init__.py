"""imgfix: repair (inpaint) and generate images with deep learning."""

__version__ = "0.1.0"
