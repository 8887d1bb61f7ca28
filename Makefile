# imgfix: two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DATA   := data

# Debian packages whose photos make the inpainter's training corpus (licences: docs/DATA.md).
PHOTO_PACKAGES := gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers \
	tuxpaint-stamps-default ukui-wallpapers lomiri-wallpapers lomiri-wallpapers-16.04 \
	lomiri-wallpapers-20.04

.PHONY: install demo test lint format photos emoji train-inpainter train-text train-vae train-cgan \
	bench bench-inpaint bench-generate bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,data]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	@mkdir -p outputs
	$(BIN)/imgfix inpaint examples/sunset.jpg --mask examples/sunset-mask.png --dilate 4 \
		-o outputs/sunset-inpainted.jpg --overwrite
	@echo "wrote outputs/sunset-inpainted.jpg"
	$(BIN)/imgfix --seed 0 generate --prompt cat -o outputs/cat.png --overwrite
	$(BIN)/imgfix --seed 0 generate --prompts-file examples/prompts.txt -n 6 --grid \
		-o outputs/generated-grid.png --overwrite

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The training photos: download the Debian packages, unpack them, collect the photos.
photos: install
	mkdir -p $(DATA)/debs $(DATA)/raw
	-apt-get update -qq
	cd $(DATA)/debs && apt-get download $(PHOTO_PACKAGES)
	for deb in $(DATA)/debs/*.deb; do dpkg -x "$$deb" $(DATA)/raw; done
	$(BIN)/imgfix data photos --out $(DATA)/photos $(DATA)/raw/usr/share

# The emoji text-image corpus: OpenMoji from PyPI, Noto Color Emoji and the CLDR emoji keywords
# from Debian (docs/DATA.md).
EMOJI_PACKAGES := fonts-noto-color-emoji unicode-cldr-core

emoji: install
	mkdir -p $(DATA)/debs $(DATA)/raw
	for pkg in $(EMOJI_PACKAGES); do \
		ls $(DATA)/debs/$${pkg}_*.deb >/dev/null 2>&1 || \
		{ apt-get update -qq; (cd $(DATA)/debs && apt-get download $$pkg); } || exit 1; \
		dpkg -x $$(ls $(DATA)/debs/$${pkg}_*.deb | head -1) $(DATA)/raw; \
	done
	$(BIN)/imgfix data emoji --out $(DATA)/emoji

# The shipped text-to-image models, as their cards record. The VAE and the GAN were stopped by
# SIGTERM before their last step to fit the session (the cards give the step); ARGS=--resume
# continues a stopped run. The GAN starts from the VAE's checkpoint.
train-text: install
	$(BIN)/imgfix --seed 0 train text --data $(DATA)/emoji --name prompt-encoder --kind ngram \
		--steps 1200 --batch-size 256 --checkpoint-minutes 5 $(ARGS)

train-vae: install
	$(BIN)/imgfix --seed 0 train vae --data $(DATA)/emoji --name emoji-vae --steps 3000 \
		--batch-size 64 --z-dim 16 --kl-weight 10 --kl-warmup 300 --checkpoint-minutes 5 $(ARGS)

train-cgan: install
	$(BIN)/imgfix --seed 0 train cgan --data $(DATA)/emoji --name emoji-cgan \
		--init runs/emoji-vae/checkpoint.keras --steps 3000 --batch-size 32 --kl-weight 0.05 \
		--checkpoint-minutes 5 $(ARGS)

# The shipped photo-inpainter, exactly as its card records. `make train-inpainter ARGS=--resume`
# continues an interrupted run from runs/photo-inpainter/checkpoint.keras.
train-inpainter: install
	$(BIN)/imgfix --seed 0 train inpainter --data $(DATA)/photos --name photo-inpainter \
		--image-size 128 --epochs 5 --steps 1000 --batch-size 16 --lr 0.0002 --rec-loss psnr \
		--logdir runs/photo-inpainter --checkpoint-minutes 10 $(ARGS)

# The benchmark suite (bench/run.py): inpainting quality against OpenCV and scikit-image, speed
# and memory, training throughput against the keras.io DCGAN and VAE, generation quality. It
# writes docs/benchmarks.md and its plots (docs/bench/), and the quality figures onto the cards.
bench: install
	test -f $(DATA)/emoji/captions.jsonl || $(MAKE) emoji
	$(BIN)/python -m bench.run

# One part at a time, then the page re-rendered from every part's latest JSON (outputs/bench).
bench-inpaint: install
	$(BIN)/python -m bench.run --only quality

bench-generate: install
	test -f $(DATA)/emoji/captions.jsonl || $(MAKE) emoji
	$(BIN)/python -m bench.run --only generation

# A tiny subset in under 2 minutes: checks the harness works (outputs/bench-quick), no thresholds.
bench-quick: install
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf outputs .pytest_cache .ruff_cache
