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

.PHONY: install demo test lint format photos train-inpainter bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	@mkdir -p outputs
	$(BIN)/imgfix inpaint examples/sunset.jpg --mask examples/sunset-mask.png --dilate 4 \
		-o outputs/sunset-inpainted.jpg --overwrite
	@echo "wrote outputs/sunset-inpainted.jpg"

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

# The shipped photo-inpainter, exactly as its card records. `make train-inpainter ARGS=--resume`
# continues an interrupted run from runs/photo-inpainter/checkpoint.keras.
train-inpainter: install
	$(BIN)/imgfix --seed 0 train inpainter --data $(DATA)/photos --name photo-inpainter \
		--image-size 128 --epochs 5 --steps 1000 --batch-size 16 --lr 0.0002 --rec-loss psnr \
		--logdir runs/photo-inpainter --checkpoint-minutes 10 $(ARGS)

bench: install
	$(BIN)/python -m bench.inpaint_quality --model photo-inpainter \
		--methods telea-r3,ns-r3,coarse-fill,mean-colour --json outputs/inpaint_quality.json \
		--update-card

bench-quick: install
	$(BIN)/python -m bench.inpaint_quality --model photo-inpainter --images astronaut \
		--sizes 256 --methods telea-r3

clean:
	rm -rf outputs .pytest_cache .ruff_cache
