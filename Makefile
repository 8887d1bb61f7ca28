# imgfix: two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DATA   := data

# Debian packages whose photos make the inpainter's training corpus (licences: docs/DATA.md).
PHOTO_PACKAGES := gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers \
	tuxpaint-stamps-default ukui-wallpapers lomiri-wallpapers lomiri-wallpapers-16.04 \
	lomiri-wallpapers-20.04 endless-sky-data endless-sky-high-dpi scratch tuxpaint-data \
	lxqt-themes palapeli-data kalzium-data ufoai-textures
# Where the photos are, under data/raw/usr/share (the packages' other images are icons,
# drawings, game sprites, screenshots or normal maps). PHOTO_DIRS hold photos only; in
# PHOTO_MIXED_DIRS every JPEG and PNG counts except the PHOTO_NOT names (drawings, renders,
# logos, and UFO:AI's normal maps).
PHOTO_DIRS := backgrounds wallpapers tuxpaint/stamps tuxpaint/templates \
	games/endless-sky/plugins/endless-sky-high-dpi/images/land kalzium/data/toolpics \
	palapeli/collection
PHOTO_MIXED_DIRS := games/endless-sky/images/scene lxqt/wallpapers scratch/Media/Backgrounds \
	games/ufoai/base/0textures/textures/tex_nature
PHOTO_NOT := eso0.jpg geoscan.jpg tempest.jpg \
	kde-plasma.png lxqt-origami-green.png origami-bright-logo.png origami-dark.png \
	origami-light.png plasma-logo-bright.png plasma-logo-dark.png plasma_arch.png \
	simple_blue_widescreen.png triangles-logo.png triangles.png waves-logo.png \
	waves-purple-logo.jpg \
	party-room.jpg room1.jpg room2.jpg room3.jpg spotlight-stage.jpg woods-and-bench.jpg \
	graffiti.jpg school2.jpg basketball-court2.png \
	*_nm.png *_nm.jpg

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

# Two workers, one test file each at a time (module fixtures stay in one process): the suite's
# time is mostly single-threaded start-up and tracing, so 2 cores run it about 3x faster.
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The training photos: download the Debian packages, unpack them, collect the photos.
# Packages already in data/debs are not downloaded again. UFO:AI keeps its textures in a zip
# (.pk3), which is unpacked next to it.
photos: install
	mkdir -p $(DATA)/debs $(DATA)/raw
	-apt-get update -qq
	for pkg in $(PHOTO_PACKAGES); do \
		ls $(DATA)/debs/$${pkg}_*.deb >/dev/null 2>&1 || \
		(cd $(DATA)/debs && apt-get download $$pkg) || exit 1; \
		dpkg -x $$(ls $(DATA)/debs/$${pkg}_*.deb | head -1) $(DATA)/raw || exit 1; \
	done
	cd $(DATA)/raw/usr/share/games/ufoai/base && test -d 0textures || { rm -rf 0textures.tmp && \
		$(abspath $(BIN))/python -m zipfile -e 0textures.pk3 0textures.tmp && \
		mv 0textures.tmp 0textures; }
	$(BIN)/imgfix data photos --out $(DATA)/photos $(PHOTO_DIRS:%=$(DATA)/raw/usr/share/%) \
		$$(find $(PHOTO_MIXED_DIRS:%=$(DATA)/raw/usr/share/%) -type f \
		\( -name '*.jpg' -o -name '*.png' \) $(foreach n,$(PHOTO_NOT),! -name '$(n)') | sort)

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

# The shipped text-to-image models, as their cards record. Both generators are conditioned on
# the concept (--condition concept): the prompt reaches a concept by its captions or the prompt
# encoder. The GAN starts from the VAE's checkpoint; ARGS=--resume continues a stopped run.
# `python -m bench.generation_curve --zoo models_zoo --model NAME --log runs/NAME/eval.jsonl`
# alongside logs the evaluator's figures at every checkpoint.
train-text: install
	$(BIN)/imgfix --seed 0 train text --data $(DATA)/emoji --name prompt-encoder --kind ngram \
		--steps 1200 --batch-size 256 --checkpoint-minutes 5 $(ARGS)

train-vae: install
	$(BIN)/imgfix --seed 0 train vae --data $(DATA)/emoji --name emoji-vae --condition concept \
		--steps 8000 --batch-size 64 --z-dim 16 --kl-weight 10 --kl-warmup 300 \
		--checkpoint-minutes 3 $(ARGS)

train-cgan: install
	$(BIN)/imgfix --seed 0 train cgan --data $(DATA)/emoji --name emoji-cgan --condition concept \
		--init runs/emoji-vae/checkpoint.keras --steps 4000 --batch-size 32 --kl-weight 0.05 \
		--checkpoint-minutes 3 $(ARGS)

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
