#!/usr/bin/env bash
# install-deps.sh -- make sure the tools and libraries libhlr needs are here.
# Cheap when nothing is missing.  As root it installs what is missing with
# apt-get (running `apt-get update` once first); otherwise it prints the
# exact command and fails.
set -euo pipefail

missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_file() { [ -e "$1" ] || missing+=("$2"); }
need_pc() { pkg-config --exists "$1" 2>/dev/null || missing+=("$2"); }
# Debian's interpreter, which the Python tests use, must import the module.
need_py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1 || missing+=("$2"); }

need_cmd cc gcc
need_cmd c++ g++
need_cmd make make
need_cmd pkg-config pkg-config
need_cmd python3 python3
need_py numpy python3-numpy
# History.plot() in the Python package draws learning curves with matplotlib (its test needs it).
need_py matplotlib python3-matplotlib
# python/examples/tune.py (hyperparameter search) and its test need Optuna.
need_py optuna python3-optuna
# The ONNX export test checks every exported file with ONNX's own checker.
need_py onnx python3-onnx
need_cmd npm npm
# bin/hlr-serve's browser test (make test) drives Debian's Chromium; make load-test loads the server with wrk.
need_cmd chromium chromium
need_cmd wrk wrk
need_cmd gzip gzip
need_cmd sha256sum coreutils
# The API reference (make docs; make test fails on a Doxygen warning) and the man pages.
need_cmd doxygen doxygen
need_cmd scdoc scdoc
need_cmd man man-db
# Word lists that bin/hlr-langid learns from (the five default languages, and those --langs adds).
need_file /usr/share/dict/american-english wamerican
need_file /usr/share/dict/spanish wspanish
need_file /usr/share/dict/ngerman wngerman
need_file /usr/share/dict/dutch wdutch
need_file /usr/share/dict/polish wpolish
need_file /usr/share/dict/french wfrench
need_file /usr/share/dict/italian witalian
need_file /usr/share/dict/portuguese wportuguese
need_file /usr/share/dict/swedish wswedish
# hlr-read's words task draws words in Debian's handwriting fonts (examples/handwriting.c lists each file;
# docs/words.md says which languages each draws); make bench-words compares with Tesseract 5 and the
# language packs of the five default languages (PIL scales its pictures).
for f in truetype/fifthhorseman/dkg.ttf:fonts-dkg-handwriting truetype/breip/Breip.ttf:fonts-breip \
         truetype/femkeklaver/femkeklaver.ttf:fonts-femkeklaver truetype/klee/KleeOne-Regular.ttf:fonts-klee \
         truetype/ecolier-court/Ecolier-court.ttf:fonts-ecolier-court \
         truetype/leckerli-one/LeckerliOne-Regular.ttf:fonts-leckerli-one \
         truetype/cabinsketch/CabinSketch-Regular.ttf:fonts-cabinsketch \
         truetype/klaudia-berenika/Klaudia.ttf:fonts-klaudia-berenika \
         truetype/tomsontalks/TomsonTalks.ttf:fonts-tomsontalks truetype/tlwg/Purisa.ttf:fonts-tlwg-purisa-ttf \
         truetype/humor-sans/Humor-Sans.ttf:fonts-humor-sans truetype/rufscript/Rufscript010.ttf:fonts-rufscript \
         truetype/andika/Andika-Regular.ttf:fonts-sil-andika truetype/isabella/Isabella.ttf:fonts-isabella \
         truetype/sjfonts/SteveHand.ttf:fonts-sjfonts truetype/yusei-magic/YuseiMagic-Regular.ttf:fonts-yusei-magic \
         truetype/yozvox-yozfont/YOzRS_.ttf:fonts-yozvox-yozfont-standard-kana \
         truetype/kristi/Kristi.ttf:fonts-kristi opentype/joscelyn/Joscelyn-Regular.otf:fonts-joscelyn \
         opentype/comic-neue/ComicNeue-Regular.otf:fonts-comic-neue opentype/havana/Havana-Regular.otf:fonts-havana \
         opentype/lobster/lobster.otf:fonts-lobster opentype/lobstertwo/LobsterTwo-Regular.otf:fonts-lobstertwo \
         opentype/bwht/BecauseWeBuild-Regular.otf:fonts-bwht \
         opentype/kaushanscript/KaushanScript-Regular.otf:fonts-kaushanscript \
         opentype/dancingscript/DancingScript-Regular.otf:fonts-dancingscript \
         opentype/urw-base35/P052-Italic.otf:fonts-urw-base35 truetype/freefont/FreeSerifItalic.ttf:fonts-freefont-ttf \
         truetype/liberation2/LiberationSerif-Italic.ttf:fonts-liberation2 \
         opentype/linux-libertine/LinLibertine_RI.otf:fonts-linuxlibertine \
         opentype/ebgaramond/EBGaramond12-Italic.otf:fonts-ebgaramond \
         truetype/gentiumplus/GentiumPlus-Italic.ttf:fonts-sil-gentiumplus \
         truetype/dejavu/DejaVuSerif-Italic.ttf:fonts-dejavu-extra; do
    need_file "/usr/share/fonts/${f%%:*}" "${f##*:}"
done
need_file /usr/share/texmf/fonts/opentype/public/tex-gyre/texgyrechorus-mediumitalic.otf fonts-texgyre
# ... and hands drawn by strokes: the Hershey fonts, read by libhersheyfont (hlr-read links it).
need_file /usr/share/hershey-fonts/scripts.jhf hershey-fonts-data
need_file /usr/include/hersheyfont.h libhersheyfont-dev
need_cmd tesseract tesseract-ocr
for l in eng spa deu nld pol; do
    need_file "/usr/share/tesseract-ocr/5/tessdata/$l.traineddata" "tesseract-ocr-$l"
done
need_py PIL python3-pil
if command -v pkg-config >/dev/null 2>&1; then
    # hlr-read's words task renders text with FreeType.
    need_pc freetype2 libfreetype-dev
    need_pc openblas libopenblas-dev
    need_pc check check
    need_pc zlib zlib1g-dev
    need_pc libpng libpng-dev
    # bin/hlr-serve: HTTP through libmicrohttpd, JSON through cJSON.
    need_pc libmicrohttpd libmicrohttpd-dev
    need_pc libcjson libcjson-dev
    # ONNX export: protobuf-c's runtime and compiler, and ONNX's own onnx.proto (libonnx-dev).
    need_pc libprotobuf-c libprotobuf-c-dev
    need_cmd protoc-c protobuf-c-compiler
    need_file /usr/include/onnx/onnx.proto libonnx-dev
    # ONNX's own conformance cases for the importer (tests/onnx/conformance.py in make test).
    need_file /usr/share/libonnx-testdata/data/node libonnx-testdata
    # Data-parallel training (make mpi, libhlr-mpi) and its tests in make test: Open MPI.
    need_pc ompi-c libopenmpi-dev
    need_cmd mpirun openmpi-bin
    # Debian's check.pc links libsubunit, which lives in its own package.
    need_file /usr/include/subunit/child.h libsubunit-dev
else
    missing+=(libfreetype-dev libopenblas-dev check zlib1g-dev libpng-dev libsubunit-dev libopenmpi-dev openmpi-bin libmicrohttpd-dev
              libcjson-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

# Remove duplicates, keep the order.
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
cmd="apt-get install -y --no-install-recommends ${pkgs[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "libhlr needs these packages: ${pkgs[*]}" >&2
    echo "install them as root with:" >&2
    echo "    sudo apt-get update && sudo $cmd" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "libhlr needs: ${pkgs[*]}, and this machine has no apt-get; install them with its package manager" >&2
    exit 1
fi
echo "installing: ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
$cmd -qq
