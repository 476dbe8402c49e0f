#!/usr/bin/python3
"""libhlr against Tesseract on handwritten words (`make bench-words`).

Both read the same pictures: the held-out-font test words that `hlr-read train --task words` tests
on (`hlr-read generate --task words --part test-held-out`, same seed, word count and languages as
the training run), PNG files of dark ink on white paper 38 pixels high.  Each system runs as one
process over all the pictures, so its start-up (model files, Tesseract's five traineddata) is
counted in its seconds per 1,000 words:

  libhlr     `hlr-read predict --json MODEL PICTURES...`: best-path text, and the language from the
             hlr-langid model saved beside MODEL, applied to that text;
  Tesseract  `tesseract LIST stdout --psm 8 -l eng+spa+deu+nld+pol` (8: one word per picture) on
             the pictures scaled --scale times (bicubic; Tesseract reads small text badly, so it gets
             the larger picture), its text lower-cased and stripped of everything but letters (the
             truth is lower-case letters), its language from the same hlr-langid model.

Three more rows for libhlr: with `--lexicon` (the best word of the five word lists; the language weighed
by that word's likelihood too), with `--views 1.15,1.35` (each picture also read stretched across by
those factors, the text all readings together find likeliest kept), and on photo-like copies of the same pictures (scaled 4 times, turned
by up to 8 degrees either way, lit unevenly from one side at 55 to 100 %, blurred and grainy, as a
phone's picture of a word on paper), which `hlr-read predict` flattens and straightens
(HLR_IMAGE_PHOTO).

Both CERs are edit distance over the truth's length, in code points.  Prints a table and ends with
the line scripts read:

  held-out fonts: libhlr CER 9.10% language 84.00% 0.9 s/1000 | tesseract CER 31.20% language 60.00% 95.0 s/1000

    bench/words.py --model words.hlr [--n 500] [--seed 0] [--scale 3] [--bin bin] [--out build/bench-words]
                   [--views 1.15,1.35] [--picture words.png]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def edits(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def letters(text):
    return "".join(c for c in text.lower() if c.isalpha())


def languages(bin_dir, langid, texts):
    """The hlr-langid model's first language for each text ('' for an empty one: counted wrong)."""
    out = [""] * len(texts)
    asked = [(i, t) for i, t in enumerate(texts) if t]
    for k in range(0, len(asked), 200):
        part = asked[k:k + 200]
        p = subprocess.run([os.path.join(bin_dir, "hlr-langid"), "predict", langid] + [t for _, t in part],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=True)
        lines = p.stdout.splitlines()
        for (i, _), line in zip(part, lines):
            m = re.search(r":\s+(\w+) \d", line)
            out[i] = m.group(1) if m else ""
    return out


def photo_copies(files, out_dir, seed):
    """Photo-like copies of the pictures (see the module's comment), seeded."""
    import numpy as np
    from PIL import Image, ImageFilter
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for f in files:
        im = Image.open(f).convert("L")
        im = im.resize((im.width * 4, im.height * 4), Image.BICUBIC)
        im = im.rotate(float(rng.uniform(-8, 8)), resample=Image.BICUBIC, expand=True, fillcolor=255)
        pad = Image.new("L", (im.width + 80, im.height + 80), 255)
        pad.paste(im, (40, 40))
        im = pad.filter(ImageFilter.GaussianBlur(1.2))
        a = np.asarray(im, dtype=np.float32) / 255.0
        h, w = a.shape
        t = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(t) * (np.arange(w)[None, :] / w - 0.5) + np.sin(t) * (np.arange(h)[:, None] / h - 0.5))
        light = 0.775 + 0.45 * ramp  # 0.55 .. 1.0 across the picture
        a = a * light + rng.normal(0, 0.03, a.shape)
        path = os.path.join(out_dir, os.path.basename(f))
        Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def read_hlr(bin_dir, model, files, lexicon=False, views=None):
    t0 = time.perf_counter()
    p = subprocess.run([os.path.join(bin_dir, "hlr-read"), "predict", "--json"] + (["--lexicon"] if lexicon else []) +
                       (["--views", views] if views else []) + [model] + files, stdout=subprocess.PIPE,
                       universal_newlines=True, check=True)
    seconds = time.perf_counter() - t0
    answers = [json.loads(line) for line in p.stdout.splitlines()]
    return ([x["lexicon"] if lexicon else x["text"] for x in answers], [x["languages"][0]["language"] for x in answers],
            seconds)


def draw_picture(path, files, rows, readings):
    """Three held-out words of each family: the picture, then the truth and each system's reading."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 15)
    picked, seen = [], {}
    for i, r in enumerate(rows):
        if seen.get(r[3], 0) < 3:
            seen[r[3]] = seen.get(r[3], 0) + 1
            picked.append(i)
    picked.sort(key=lambda i: rows[i][3])
    names = ["truth"] + [name for name, _ in readings]
    row_h, pic_w, col_w = 46, 300, 170
    im = Image.new("RGB", (pic_w + col_w * len(names) + 20, row_h * (len(picked) + 1) + 10), "white")
    d = ImageDraw.Draw(im)
    for k, name in enumerate(["picture (font)"] + names):
        d.text((10 + (0 if k == 0 else pic_w + col_w * (k - 1)), 8), name, fill="black", font=font)
    for j, i in enumerate(picked):
        y = row_h * (j + 1) + 4
        pic = Image.open(files[i]).convert("RGB")
        im.paste(pic, (10, y))
        d.text((14 + pic.width, y + 12), rows[i][3].split("-")[0].split(".")[0], fill="gray", font=font)
        texts = [rows[i][1]] + [texts[i] for _, texts in readings]
        for k, t in enumerate(texts):
            colour = "black" if k == 0 else ("darkgreen" if t == rows[i][1] else "firebrick")
            d.text((10 + pic_w + col_w * k, y + 12), t or "(nothing)", fill=colour, font=font)
    im.save(path)


def score(truth, langs, texts, got_langs):
    e = sum(edits(t, g) for t, g in zip(truth, texts))
    chars = sum(len(t) for t in truth)
    right = sum(t == g for t, g in zip(truth, texts))
    lang = sum(a == b for a, b in zip(langs, got_langs))
    n = len(truth)
    return 100.0 * e / chars, 100.0 * right / n, 100.0 * lang / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a model saved by hlr-read train --task words --save")
    ap.add_argument("--n", type=int, default=500, help="test words (default 500)")
    ap.add_argument("--seed", type=int, default=0, help="the training run's --seed (default 0)")
    ap.add_argument("--scale", type=int, default=3, help="Tesseract's pictures scaled by this (default 3)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-words"))
    ap.add_argument("--views", default="1.15,1.35",
                    help="the stretch factors of the row read with hlr-read predict --views (default 1.15,1.35)")
    ap.add_argument("--picture", help="also draw the first held-out words of each family with the readings (PNG)")
    a = ap.parse_args()
    if not shutil.which("tesseract"):
        sys.exit("bench/words.py: tesseract is not installed (scripts/install-deps.sh installs tesseract-ocr)")
    langid = re.sub(r"\.hlr$", "", a.model) + ".langid.hlr"
    if not os.path.exists(langid):
        sys.exit("bench/words.py: %s has no language model beside it (%s)" % (a.model, langid))
    pics = os.path.join(a.out, "held-out")
    for old in ("held-out", "photo-like", "tesseract"):
        if os.path.isdir(os.path.join(a.out, old)):
            shutil.rmtree(os.path.join(a.out, old))
    os.makedirs(a.out, exist_ok=True)
    subprocess.run([os.path.join(a.bin, "hlr-read"), "generate", "--task", "words", "--part", "test-held-out",
                    "--out", pics, "--test-words", str(a.n), "--seed", str(a.seed)], check=True,
                   stdout=subprocess.DEVNULL)
    rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(pics, "labels.tsv"), encoding="utf-8")
            if not line.startswith("#")]
    files = [os.path.join(pics, r[0]) for r in rows]
    truth = [r[1] for r in rows]
    langs = [r[2] for r in rows]

    hlr_text, hlr_lang, hlr_s = read_hlr(a.bin, a.model, files)
    lex_text, lex_lang, lex_s = read_hlr(a.bin, a.model, files, lexicon=True)
    views_text, views_lang, views_s = read_hlr(a.bin, a.model, files, views=a.views)
    photos = photo_copies(files, os.path.join(a.out, "photo-like"), a.seed)
    photo_text, photo_lang, photo_s = read_hlr(a.bin, a.model, photos)

    from PIL import Image  # Debian's python3-pil (scripts/install-deps.sh): the pictures for Tesseract
    tess_dir = os.path.join(a.out, "tesseract")
    os.makedirs(tess_dir, exist_ok=True)
    tess_files = []
    for f in files:
        im = Image.open(f)
        im = im.resize((im.width * a.scale, im.height * a.scale), Image.BICUBIC)
        path = os.path.join(tess_dir, os.path.basename(f))
        im.save(path)
        tess_files.append(path)
    lst = os.path.join(a.out, "tesseract.txt")
    with open(lst, "w") as f:
        f.write("\n".join(tess_files) + "\n")
    version = subprocess.run(["tesseract", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True).stdout.splitlines()[0]
    t0 = time.perf_counter()
    p = subprocess.run(["tesseract", lst, "stdout", "--psm", "8", "-l", "eng+spa+deu+nld+pol"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    tess_s = time.perf_counter() - t0
    pages = p.stdout.decode("utf-8", "replace").split("\f")
    pages = (pages + [""] * len(files))[:len(files)]
    tess_text = [letters(x) for x in pages]
    tess_lang = languages(a.bin, langid, tess_text)

    if a.picture:
        draw_picture(a.picture, files, rows, [("libhlr", hlr_text), ("libhlr --lexicon", lex_text),
                                               ("tesseract", tess_text)])
    hc, hw, hl = score(truth, langs, hlr_text, hlr_lang)
    pc, pw, pl = score(truth, langs, photo_text, photo_lang)
    lc, lw, ll = score(truth, langs, lex_text, lex_lang)
    vc, vw, vl = score(truth, langs, views_text, views_lang)
    tc, tw, tl = score(truth, langs, tess_text, tess_lang)
    hs, ts = 1000.0 * hlr_s / len(files), 1000.0 * tess_s / len(files)
    print("%d held-out-font test words (seed %d), %s; the language of each reading from %s" %
          (len(files), a.seed, os.path.relpath(pics, ROOT) if pics.startswith(ROOT) else pics, langid))
    print("%-10s %8s %15s %18s %12s" % ("", "CER", "word accuracy", "language accuracy", "s/1000"))
    print("%-10s %7.2f%% %14.2f%% %17.2f%% %12.1f" % ("libhlr", hc, hw, hl, hs))
    print("%-10s %7.2f%% %14.2f%% %17.2f%% %12.1f   (--lexicon: the word lists' best word; language by its "
          "likelihood and langid)" % ("libhlr", lc, lw, ll, 1000.0 * lex_s / len(files)))
    print("%-10s %7.2f%% %14.2f%% %17.2f%% %12.1f   (--views %s: also read stretched across, the likeliest "
          "text of all readings)" % ("libhlr", vc, vw, vl, 1000.0 * views_s / len(files), a.views))
    print("%-10s %7.2f%% %14.2f%% %17.2f%% %12.1f   (photo-like copies)" % ("libhlr", pc, pw, pl,
                                                                          1000.0 * photo_s / len(files)))
    print("%-10s %7.2f%% %14.2f%% %17.2f%% %12.1f   (%s, pictures x%d)" % ("tesseract", tc, tw, tl, ts, version,
                                                                         a.scale))
    with open(os.path.join(a.out, "bench-words.json"), "w") as f:
        json.dump({"n": len(files), "seed": a.seed, "libhlr": {"cer": hc, "word": hw, "language": hl, "s_per_1000": hs},
                   "libhlr_photo_like": {"cer": pc, "word": pw, "language": pl},
                   "libhlr_lexicon": {"cer": lc, "word": lw, "language": ll, "s_per_1000": 1000.0 * lex_s / len(files)},
                   "libhlr_views": {"cer": vc, "word": vw, "language": vl, "s_per_1000": 1000.0 * views_s / len(files),
                                    "views": a.views},
                   "tesseract": {"cer": tc, "word": tw, "language": tl, "s_per_1000": ts, "version": version,
                                 "scale": a.scale},
                   "examples": [{"truth": t, "libhlr": h, "tesseract": x}
                                for t, h, x in list(zip(truth, hlr_text, tess_text))[:20]]}, f, indent=1,
                  ensure_ascii=False)
    print("held-out fonts: libhlr CER %.2f%% language %.2f%% %.1f s/1000 | tesseract CER %.2f%% language %.2f%% "
          "%.1f s/1000" % (hc, hl, hs, tc, tl, ts))


if __name__ == "__main__":
    main()
