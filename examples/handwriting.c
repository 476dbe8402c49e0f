/*
 * handwriting.c -- words drawn in Debian's handwriting fonts through
 * FreeType, then slanted, rotated, bent, thinned or thickened, blurred and
 * dirtied.  See handwriting.h; docs/words.md lists which font draws which
 * language.
 */
#include "handwriting.h"
#include "wordlang.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include <hersheyfont.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PX 32 /* the size fonts are drawn at, before the recogniser's scaling */

/* Training fonts, then the held-out families (whole families: no style of them is ever trained on). */
static const struct {
    const char *package, *path, *family;
    int held_out;
} table[] = {
    {"fonts-dkg-handwriting", "/usr/share/fonts/truetype/fifthhorseman/dkg.ttf", "DKG", 0},
    {"fonts-dkg-handwriting", "/usr/share/fonts/truetype/fifthhorseman/dkgBI.ttf", "DKG", 0},
    {"fonts-dkg-handwriting", "/usr/share/fonts/truetype/fifthhorseman/dkgBd.ttf", "DKG", 0},
    {"fonts-dkg-handwriting", "/usr/share/fonts/truetype/fifthhorseman/dkgIt.ttf", "DKG", 0},
    {"fonts-breip", "/usr/share/fonts/truetype/breip/Breip.ttf", "Breip", 0},
    {"fonts-breip", "/usr/share/fonts/truetype/breip/breipfont.ttf", "Breip", 0},
    {"fonts-femkeklaver", "/usr/share/fonts/truetype/femkeklaver/femkeklaver.ttf", "Femke Klaver", 0},
    {"fonts-klee", "/usr/share/fonts/truetype/klee/KleeOne-Regular.ttf", "Klee One", 0},
    {"fonts-klee", "/usr/share/fonts/truetype/klee/KleeOne-SemiBold.ttf", "Klee One", 0},
    {"fonts-joscelyn", "/usr/share/fonts/opentype/joscelyn/Joscelyn-Regular.otf", "Joscelyn", 0},
    {"fonts-comic-neue", "/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf", "Comic Neue", 0},
    {"fonts-comic-neue", "/usr/share/fonts/opentype/comic-neue/ComicNeue-Bold.otf", "Comic Neue", 0},
    {"fonts-comic-neue", "/usr/share/fonts/opentype/comic-neue/ComicNeue-Italic.otf", "Comic Neue", 0},
    {"fonts-comic-neue", "/usr/share/fonts/opentype/comic-neue/ComicNeue-Light.otf", "Comic Neue", 0},
    {"fonts-comic-neue", "/usr/share/fonts/opentype/comic-neue/ComicNeue-LightItalic.otf", "Comic Neue", 0},
    {"fonts-comic-neue", "/usr/share/fonts/opentype/comic-neue/ComicNeue-BoldItalic.otf", "Comic Neue", 0},
    {"fonts-ecolier-court", "/usr/share/fonts/truetype/ecolier-court/Ecolier-court.ttf", "Ecolier", 0},
    {"fonts-havana", "/usr/share/fonts/opentype/havana/Havana-Regular.otf", "Havana", 0},
    {"fonts-leckerli-one", "/usr/share/fonts/truetype/leckerli-one/LeckerliOne-Regular.ttf", "Leckerli One", 0},
    {"fonts-lobster", "/usr/share/fonts/opentype/lobster/lobster.otf", "Lobster", 0},
    {"fonts-lobstertwo", "/usr/share/fonts/opentype/lobstertwo/LobsterTwo-Regular.otf", "Lobster Two", 0},
    {"fonts-lobstertwo", "/usr/share/fonts/opentype/lobstertwo/LobsterTwo-Italic.otf", "Lobster Two", 0},
    {"fonts-lobstertwo", "/usr/share/fonts/opentype/lobstertwo/LobsterTwo-Bold.otf", "Lobster Two", 0},
    {"fonts-lobstertwo", "/usr/share/fonts/opentype/lobstertwo/LobsterTwo-BoldItalic.otf", "Lobster Two", 0},
    {"fonts-cabinsketch", "/usr/share/fonts/truetype/cabinsketch/CabinSketch-Regular.ttf", "Cabin Sketch", 0},
    {"fonts-cabinsketch", "/usr/share/fonts/truetype/cabinsketch/CabinSketch-Bold.ttf", "Cabin Sketch", 0},
    {"fonts-klaudia-berenika", "/usr/share/fonts/truetype/klaudia-berenika/Klaudia.ttf", "Klaudia", 0},
    {"fonts-klaudia-berenika", "/usr/share/fonts/truetype/klaudia-berenika/Klaudia-Oblique.ttf", "Klaudia", 0},
    {"fonts-klaudia-berenika", "/usr/share/fonts/truetype/klaudia-berenika/Berenika.ttf", "Berenika", 0},
    {"fonts-klaudia-berenika", "/usr/share/fonts/truetype/klaudia-berenika/Berenika-Oblique.ttf", "Berenika", 0},
    {"fonts-tomsontalks", "/usr/share/fonts/truetype/tomsontalks/TomsonTalks.ttf", "Tomson Talks", 0},
    {"fonts-tlwg-purisa-ttf", "/usr/share/fonts/truetype/tlwg/Purisa.ttf", "Purisa", 0},
    {"fonts-tlwg-purisa-ttf", "/usr/share/fonts/truetype/tlwg/Purisa-Oblique.ttf", "Purisa", 0},
    {"fonts-tlwg-purisa-ttf", "/usr/share/fonts/truetype/tlwg/Purisa-Bold.ttf", "Purisa", 0},
    {"fonts-bwht", "/usr/share/fonts/opentype/bwht/BecauseWeBuild-Regular.otf", "Because We Had To", 0},
    {"fonts-bwht", "/usr/share/fonts/opentype/bwht/BecauseWeConnect-Regular.otf", "Because We Had To", 0},
    {"fonts-bwht", "/usr/share/fonts/opentype/bwht/BecauseWeCreate-Regular.otf", "Because We Had To", 0},
    {"fonts-bwht", "/usr/share/fonts/opentype/bwht/BecauseWeLearn-Regular.otf", "Because We Had To", 0},
    {"fonts-bwht", "/usr/share/fonts/opentype/bwht/BecauseWeMentor-Regular.otf", "Because We Had To", 0},
    {"fonts-bwht", "/usr/share/fonts/opentype/bwht/BecauseWeOrganize-Regular.otf", "Because We Had To", 0},
    {"fonts-humor-sans", "/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf", "Humor Sans", 0},
    {"fonts-rufscript", "/usr/share/fonts/truetype/rufscript/Rufscript010.ttf", "Rufscript", 0},
    {"fonts-sil-andika", "/usr/share/fonts/truetype/andika/Andika-Regular.ttf", "Andika", 0},
    {"fonts-sil-andika", "/usr/share/fonts/truetype/andika/Andika-Italic.ttf", "Andika", 0},
    {"fonts-isabella", "/usr/share/fonts/truetype/isabella/Isabella.ttf", "Isabella", 0},
    {"fonts-sjfonts", "/usr/share/fonts/truetype/sjfonts/SteveHand.ttf", "Steve Hand", 0},
    {"fonts-sjfonts", "/usr/share/fonts/truetype/sjfonts/Delphine.ttf", "Delphine", 0},
    {"fonts-yusei-magic", "/usr/share/fonts/truetype/yusei-magic/YuseiMagic-Regular.ttf", "Yusei Magic", 0},
    /* a Japanese handwriting font's Latin letters (all five alphabets) */
    {"fonts-yozvox-yozfont-standard-kana", "/usr/share/fonts/truetype/yozvox-yozfont/YOzRS_.ttf", "YOzFont", 0},
    {"fonts-yozvox-yozfont-standard-kana", "/usr/share/fonts/truetype/yozvox-yozfont/YOzRS_i.ttf", "YOzFont", 0},
    {"fonts-yozvox-yozfont-standard-kana", "/usr/share/fonts/truetype/yozvox-yozfont/YOzBS_.ttf", "YOzFont", 0},
    /* italic and script type: not handwriting, but its shapes lean and join as a hand's do (and most of
     * these draw Polish, which few handwriting fonts do) */
    {"fonts-texgyre", "/usr/share/texmf/fonts/opentype/public/tex-gyre/texgyrechorus-mediumitalic.otf",
     "TeX Gyre Chorus", 0},
    {"fonts-texgyre", "/usr/share/texmf/fonts/opentype/public/tex-gyre/texgyreschola-italic.otf", "TeX Gyre Schola", 0},
    {"fonts-texgyre", "/usr/share/texmf/fonts/opentype/public/tex-gyre/texgyreadventor-italic.otf", "TeX Gyre Adventor",
     0},
    {"fonts-urw-base35", "/usr/share/fonts/opentype/urw-base35/URWBookman-LightItalic.otf", "URW Bookman", 0},
    {"fonts-urw-base35", "/usr/share/fonts/opentype/urw-base35/P052-Italic.otf", "P052", 0},
    {"fonts-urw-base35", "/usr/share/fonts/opentype/urw-base35/C059-Italic.otf", "C059", 0},
    {"fonts-urw-base35", "/usr/share/fonts/opentype/urw-base35/NimbusSans-Italic.otf", "Nimbus Sans", 0},
    {"fonts-urw-base35", "/usr/share/fonts/opentype/urw-base35/URWGothic-BookOblique.otf", "URW Gothic", 0},
    {"fonts-freefont-ttf", "/usr/share/fonts/truetype/freefont/FreeSerifItalic.ttf", "FreeSerif", 0},
    {"fonts-liberation2", "/usr/share/fonts/truetype/liberation2/LiberationSerif-Italic.ttf", "Liberation Serif", 0},
    {"fonts-liberation2", "/usr/share/fonts/truetype/liberation2/LiberationSans-Italic.ttf", "Liberation Sans", 0},
    {"fonts-linuxlibertine", "/usr/share/fonts/opentype/linux-libertine/LinLibertine_RI.otf", "Linux Libertine", 0},
    {"fonts-ebgaramond", "/usr/share/fonts/opentype/ebgaramond/EBGaramond12-Italic.otf", "EB Garamond", 0},
    {"fonts-sil-gentiumplus", "/usr/share/fonts/truetype/gentiumplus/GentiumPlus-Italic.ttf", "Gentium Plus", 0},
    {"fonts-dejavu-extra", "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf", "DejaVu Serif", 0},
    {"fonts-dejavu-extra", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Oblique.ttf", "DejaVu Sans", 0},
    {"fonts-kaushanscript", "/usr/share/fonts/opentype/kaushanscript/KaushanScript-Regular.otf", "Kaushan Script", 1},
    {"fonts-kristi", "/usr/share/fonts/truetype/kristi/Kristi.ttf", "Kristi", 1},
    {"fonts-dancingscript", "/usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf", "Dancing Script", 1},
    {"fonts-dancingscript", "/usr/share/fonts/opentype/dancingscript/DancingScript-Bold.otf", "Dancing Script", 1},

};

/* Hands drawn by strokes: Debian's Hershey fonts (hershey-fonts-data, read by libhersheyfont), single-stroke
 * letters as a pen draws them: joined scripts, a print hand and an italic.  Training hands only. */
static const struct {
    const char *name, *family;
} hands[] = {
    {"scripts", "Hershey Script Simplex"}, {"scriptc", "Hershey Script Complex"}, {"cursive", "Hershey Cursive"},
    {"futural", "Hershey Sans Simplex"},   {"rowmans", "Hershey Roman Simplex"},  {"timesi", "Hershey Times Italic"},
};

const hw_style hw_style_default = {.slant = 0.4,
                                   .rotate = 3.0,
                                   .elastic = 2.0,
                                   .jitter = 0.06,
                                   .spacing = 0.08,
                                   .stretch = 0.2,
                                   .thickness = 0.5,
                                   .blur = 0.3,
                                   .noise = 0.06};

double hw_uniform(uint64_t *rng)
{
    uint64_t z = (*rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static double between(uint64_t *rng, double a, double b)
{
    return a + (b - a) * hw_uniform(rng);
}

int hw_fonts_open(hw_fonts *fs, const char *prog)
{
    memset(fs, 0, sizeof *fs);
    FT_Library lib;
    if (FT_Init_FreeType(&lib) != 0) {
        fprintf(stderr, "%s: FreeType cannot start\n", prog);
        return -1;
    }
    fs->lib = lib;
    int train = 0, test = 0;
    _Static_assert(sizeof table / sizeof table[0] + sizeof hands / sizeof hands[0] <= HW_MAX_FONTS,
                   "HW_MAX_FONTS holds the fonts and the hands");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        FT_Face face;
        if (FT_New_Face(lib, table[i].path, 0, &face) != 0) {
            fs->missing++;
            continue;
        }
        if (FT_Set_Pixel_Sizes(face, 0, PX) != 0) {
            FT_Done_Face(face);
            fs->missing++;
            continue;
        }
        fs->font[fs->n++] = (hw_font){table[i].package, table[i].path, table[i].family, table[i].held_out, face, NULL, 0};
        train += !table[i].held_out;
        test += table[i].held_out;
    }
    for (size_t i = 0; i < sizeof hands / sizeof hands[0] && fs->n < HW_MAX_FONTS; i++) {
        struct hershey_font *hf = hershey_font_load(hands[i].name);
        struct hershey_glyph *x = hf ? hershey_font_glyph(hf, 'x') : NULL;
        if (!x || x->width == 0) {
            if (hf)
                hershey_font_free(hf);
            fs->missing++;
            continue;
        }
        double top = 0;
        for (const struct hershey_path *p = x->paths; p; p = p->next)
            for (int k = 0; k < p->nverts; k++)
                top = p->verts[k].y > top ? p->verts[k].y : top;
        fs->font[fs->n++] = (hw_font){"hershey-fonts-data", hands[i].name, hands[i].family, 0, NULL, hf, top};
        train++;
    }
    if (!train || !test) {
        fprintf(stderr,
                "%s: no %s font is installed: install Debian's handwriting fonts (scripts/install-deps.sh "
                "does, as root; e.g. %s)\n",
                prog, train ? "held-out" : "training",
                train ? "fonts-kaushanscript fonts-kristi" : "fonts-comic-neue fonts-dkg-handwriting");
        hw_fonts_close(fs);
        return -1;
    }
    return 0;
}

void hw_fonts_close(hw_fonts *fs)
{
    for (int i = 0; i < fs->n; i++)
        if (fs->font[i].face)
            FT_Done_Face((FT_Face)fs->font[i].face);
        else
            hershey_font_free((struct hershey_font *)fs->font[i].strokes);
    if (fs->lib)
        FT_Done_FreeType((FT_Library)fs->lib);
    memset(fs, 0, sizeof *fs);
}

/* The code points of a UTF-8 word: count, or -1. */
static int code_points(const char *word, uint32_t *cp, int cap)
{
    int n = wl_utf8_decode((const unsigned char *)word, strlen(word), cp, cap);
    return n < 1 || n > cap ? -1 : n;
}

/* ---- hands drawn by strokes ---- */

/* The marks a hand adds to its letters for the accented ones. */
enum mark { ACUTE = 1, GRAVE, CIRCUMFLEX, DIAERESIS, TILDE, DOT, RING, OGONEK, CEDILLA, STROKE };

static const struct {
    uint32_t cp;
    char base;
    unsigned char mark;
} accented[] = {
    {0xE1, 'a', ACUTE},      {0xE9, 'e', ACUTE},      {0xED, 'i', ACUTE},      {0xF3, 'o', ACUTE},
    {0xFA, 'u', ACUTE},      {0xFD, 'y', ACUTE},      {0x107, 'c', ACUTE},     {0x144, 'n', ACUTE},
    {0x15B, 's', ACUTE},     {0x17A, 'z', ACUTE},     {0xE0, 'a', GRAVE},      {0xE8, 'e', GRAVE},
    {0xEC, 'i', GRAVE},      {0xF2, 'o', GRAVE},      {0xF9, 'u', GRAVE},      {0xE2, 'a', CIRCUMFLEX},
    {0xEA, 'e', CIRCUMFLEX}, {0xEE, 'i', CIRCUMFLEX}, {0xF4, 'o', CIRCUMFLEX}, {0xFB, 'u', CIRCUMFLEX},
    {0xE4, 'a', DIAERESIS},  {0xEB, 'e', DIAERESIS},  {0xEF, 'i', DIAERESIS},  {0xF6, 'o', DIAERESIS},
    {0xFC, 'u', DIAERESIS},  {0xFF, 'y', DIAERESIS},  {0xF1, 'n', TILDE},      {0xE3, 'a', TILDE},
    {0xF5, 'o', TILDE},      {0x17C, 'z', DOT},       {0xE5, 'a', RING},       {0x105, 'a', OGONEK},
    {0x119, 'e', OGONEK},    {0xE7, 'c', CEDILLA},    {0x142, 'l', STROKE},
};

/* The hand's glyph for code point c and the mark to add (0: none); NULL when the hand cannot draw c. */
static const struct hershey_glyph *hand_glyph(const hw_font *f, uint32_t c, int *mark)
{
    *mark = 0;
    if (!(c >= 'a' && c <= 'z')) {
        size_t k = 0;
        while (k < sizeof accented / sizeof accented[0] && accented[k].cp != c)
            k++;
        if (k == sizeof accented / sizeof accented[0])
            return NULL;
        *mark = accented[k].mark;
        c = (uint32_t)accented[k].base;
    }
    const struct hershey_glyph *g = hershey_font_glyph((struct hershey_font *)f->strokes, (unsigned char)c);
    return g && g->width > 0 && g->paths ? g : NULL;
}

int hw_font_draws(const hw_fonts *fs, int font, const char *word)
{
    uint32_t cp[4 * WL_MAX_LEN];
    int n = code_points(word, cp, 4 * WL_MAX_LEN), mark;
    if (n < 0 || font < 0 || font >= fs->n)
        return 0;
    for (int i = 0; i < n; i++)
        if (fs->font[font].face ? FT_Get_Char_Index((FT_Face)fs->font[font].face, cp[i]) == 0
                                : !hand_glyph(&fs->font[font], cp[i], &mark))
            return 0;
    return 1;
}

/* A random font (fonts 1) or hand drawn by strokes (fonts 0) of the set that draws the word; -1 for none. */
static int pick(const hw_fonts *fs, int fonts, int held_out, const char *word, uint64_t *rng)
{
    int ok[HW_MAX_FONTS], n = 0;
    for (int i = 0; i < fs->n; i++)
        if (!fs->font[i].face == !fonts && fs->font[i].held_out == held_out && hw_font_draws(fs, i, word))
            ok[n++] = i;
    return n ? ok[(int)(hw_uniform(rng) * n)] : -1;
}

int hw_pick_font(const hw_fonts *fs, int held_out, const char *word, uint64_t *rng)
{
    return pick(fs, 1, held_out, word, rng);
}

int hw_pick_hand(const hw_fonts *fs, const char *word, uint64_t *rng)
{
    return pick(fs, 0, 0, word, rng);
}

/* Bilinear sample of an h x w image at (x, y), 0 outside. */
static float sample(const float *im, int h, int w, double x, double y)
{
    int ix = (int)floor(x), iy = (int)floor(y);
    double ax = x - ix, ay = y - iy, s = 0;
    for (int k = 0; k < 4; k++) {
        int xx = ix + (k & 1), yy = iy + (k >> 1);
        if (xx >= 0 && xx < w && yy >= 0 && yy < h)
            s += (k & 1 ? ax : 1 - ax) * (k >> 1 ? ay : 1 - ay) * im[(size_t)yy * w + xx];
    }
    return (float)s;
}

/* 3 x 3 maximum (dilate) or minimum (erode) of an h x w image into out. */
static void morph(const float *in, float *out, int h, int w, int dilate)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = in[(size_t)y * w + x];
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    float u = yy >= 0 && yy < h && xx >= 0 && xx < w ? in[(size_t)yy * w + xx] : 0.0f;
                    v = dilate ? (u > v ? u : v) : (u < v ? u : v);
                }
            out[(size_t)y * w + x] = v;
        }
}

static hlr_tensor *render_strokes(const hw_fonts *fs, int font, const char *word, const hw_style *st, uint64_t *rng,
                                  int height);

hlr_tensor *hw_render(const hw_fonts *fs, int font, const char *word, const hw_style *st, uint64_t *rng, int height)
{
    if (font >= 0 && font < fs->n && !fs->font[font].face)
        return render_strokes(fs, font, word, st, rng, height);
    int fonts[4 * WL_MAX_LEN];
    for (int i = 0; i < 4 * WL_MAX_LEN; i++)
        fonts[i] = font;
    return hw_render_letters(fs, fonts, word, st, rng, height);
}

int hw_pick_letter_fonts(const hw_fonts *fs, const char *word, uint64_t *rng, int *fonts)
{
    uint32_t cp[4 * WL_MAX_LEN];
    int n = code_points(word, cp, 4 * WL_MAX_LEN);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        int ok[HW_MAX_FONTS], k = 0;
        for (int f = 0; f < fs->n; f++)
            if (!fs->font[f].held_out && fs->font[f].face && FT_Get_Char_Index((FT_Face)fs->font[f].face, cp[i]) != 0)
                ok[k++] = f;
        if (!k)
            return -1;
        fonts[i] = ok[(int)(hw_uniform(rng) * k)];
    }
    return 0;
}

/* The ink of a (H x W, bright on 0, inside rows r0..r1 and columns c0..c1) cropped with a margin, distorted by st
 * (NULL: not at all) and scaled as the recogniser reads any picture; frees a.  NULL: no ink, or out of memory. */
static hlr_tensor *distort(float *a, int H, int W, int r0, int r1, int c0, int c1, const hw_style *st, uint64_t *rng,
                           int height)
{
    float *b = NULL;
    hlr_tensor *img = NULL, *out = NULL;
    if (r1 < 0)
        goto out; /* no ink */
    /* Keep the ink and a margin the distortions may move it into (the slant and rotation move the ends of
     * the word up to about (slant + sin rotate) times the ink's height sideways). */
    {
        const int ih = r1 - r0 + 1;
        const int mx = st ? (int)ceil((st->slant + sin(st->rotate * M_PI / 180)) * ih + 2 * st->elastic +
                                      st->stretch * (c1 - c0 + 1) / 2) +
                                3
                          : 3;
        const int my = st ? (int)ceil(sin(st->rotate * M_PI / 180) * (c1 - c0 + 1) / 2 + 2 * st->elastic) + 3 : 3;
        const int H2 = ih + 2 * my, W2 = c1 - c0 + 1 + 2 * mx;
        float *a2 = calloc((size_t)H2 * W2, sizeof *a2);
        if (!a2 || !(b = calloc((size_t)H2 * W2, sizeof *b))) {
            free(a2);
            goto out;
        }
        for (int y = r0; y <= r1; y++)
            memcpy(a2 + (size_t)(y - r0 + my) * W2 + mx, a + (size_t)y * W + c0, (size_t)(c1 - c0 + 1) * sizeof *a);
        free(a);
        a = a2;
        H = H2;
        W = W2;
    }
    if (st) {
        /* slant, rotation and an elastic bend in one inverse mapping about the picture's centre */
        const double s = between(rng, -st->slant, st->slant), th = between(rng, -st->rotate, st->rotate) * M_PI / 180;
        const double sx = 1.0 / (1.0 + between(rng, -st->stretch, st->stretch)); /* a narrower or wider hand */
        const double cx = W / 2.0, cy = H / 2.0, c = cos(th), sn = sin(th);
        enum { G = 12 }; /* a displacement every G pixels, interpolated */
        const int gw = W / G + 2, gh = H / G + 2;
        double *dx = malloc((size_t)gw * gh * sizeof *dx), *dy = malloc((size_t)gw * gh * sizeof *dy);
        if (!dx || !dy) {
            free(dx);
            free(dy);
            goto out;
        }
        for (int k = 0; k < gw * gh; k++) {
            dx[k] = between(rng, -st->elastic, st->elastic);
            dy[k] = between(rng, -st->elastic, st->elastic);
        }
        for (int y = 0; y < H; y++)
            for (int xo = 0; xo < W; xo++) {
                /* output (xo, y) comes from: undo the rotation, then the shear x' = x - s (y - cy) */
                double u = xo - cx, v = y - cy;
                double ru = c * u + sn * v, rv = -sn * u + c * v;
                double su = (ru + s * rv) * sx;
                double gx = (double)xo / G, gy = (double)y / G;
                int ix = (int)gx, iy = (int)gy;
                double fx = gx - ix, fy = gy - iy;
                double ex = (1 - fx) * (1 - fy) * dx[iy * gw + ix] + fx * (1 - fy) * dx[iy * gw + ix + 1] +
                            (1 - fx) * fy * dx[(iy + 1) * gw + ix] + fx * fy * dx[(iy + 1) * gw + ix + 1];
                double ey = (1 - fx) * (1 - fy) * dy[iy * gw + ix] + fx * (1 - fy) * dy[iy * gw + ix + 1] +
                            (1 - fx) * fy * dy[(iy + 1) * gw + ix] + fx * fy * dy[(iy + 1) * gw + ix + 1];
                b[(size_t)y * W + xo] = sample(a, H, W, cx + su + ex, cy + rv + ey);
            }
        free(dx);
        free(dy);
        float *t = a;
        a = b;
        b = t;
        /* a thinner or thicker pen (thinning only where most of the ink survives it) */
        if (hw_uniform(rng) < st->thickness) {
            const int dilate = hw_uniform(rng) < 0.5;
            morph(a, b, H, W, dilate);
            double before = 0, after = 0;
            for (size_t k = 0; k < (size_t)H * W; k++)
                before += a[k], after += b[k];
            if (dilate || after > 0.5 * before) {
                t = a;
                a = b;
                b = t;
            }
        }
        if (hw_uniform(rng) < st->blur) { /* [1 2 1] / 4 both ways */
            for (int y = 0; y < H; y++)
                for (int xo = 0; xo < W; xo++) {
                    const float *r = a + (size_t)y * W;
                    b[(size_t)y * W + xo] =
                        0.5f * r[xo] + 0.25f * (xo > 0 ? r[xo - 1] : 0) + 0.25f * (xo + 1 < W ? r[xo + 1] : 0);
                }
            for (int y = 0; y < H; y++)
                for (int xo = 0; xo < W; xo++)
                    a[(size_t)y * W + xo] = 0.5f * b[(size_t)y * W + xo] +
                                            0.25f * (y > 0 ? b[(size_t)(y - 1) * W + xo] : 0) +
                                            0.25f * (y + 1 < H ? b[(size_t)(y + 1) * W + xo] : 0);
        }
        const float ink = (float)between(rng, 0.55, 1.0), noise = (float)between(rng, 0, st->noise);
        for (size_t k = 0; k < (size_t)H * W; k++) {
            float v = a[k] * ink + noise * (float)hw_uniform(rng);
            a[k] = v > 1 ? 1 : v;
        }
    }
    img = hlr_tensor_wrap(HLR_F32, 2, (int64_t[]){H, W}, a);
    if (img)
        out = hlr_image_line(img, height, 2, HLR_IMAGE_LIGHT_INK);
out:
    hlr_tensor_free(img);
    free(a);
    free(b);
    return out;
}

hlr_tensor *hw_render_letters(const hw_fonts *fs, const int *fonts, const char *word, const hw_style *st, uint64_t *rng,
                              int height)
{
    uint32_t cp[4 * WL_MAX_LEN];
    int n = code_points(word, cp, 4 * WL_MAX_LEN);
    if (n < 0)
        return NULL;
    for (int i = 0; i < n; i++)
        if (fonts[i] < 0 || fonts[i] >= fs->n || !fs->font[fonts[i]].face)
            return NULL;
    /* Lay the letters out: pen positions from advances and kerning, plus the style's spacing and jitter. */
    int pen[4 * WL_MAX_LEN], rise[4 * WL_MAX_LEN], x = PX / 2;
    FT_UInt prev = 0;
    for (int i = 0; i < n; i++) {
        FT_Face face = (FT_Face)fs->font[fonts[i]].face;
        FT_UInt g = FT_Get_Char_Index(face, cp[i]);
        if (g == 0 || FT_Load_Glyph(face, g, FT_LOAD_DEFAULT) != 0)
            return NULL;
        if (prev && i > 0 && fonts[i - 1] == fonts[i] && FT_HAS_KERNING(face)) {
            FT_Vector k;
            if (FT_Get_Kerning(face, prev, g, FT_KERNING_DEFAULT, &k) == 0)
                x += (int)(k.x >> 6);
        }
        pen[i] = x;
        rise[i] = st ? (int)lround(between(rng, -st->jitter, st->jitter) * PX) : 0;
        x += (int)(face->glyph->advance.x >> 6);
        if (st)
            x += (int)lround(between(rng, -st->spacing / 2, st->spacing) * PX);
        prev = g;
    }
    int H = 3 * PX, W = x + PX, base = 2 * PX;
    float *a = calloc((size_t)H * W, sizeof *a);
    if (!a)
        return NULL;
    int r0 = H, r1 = -1, c0 = W, c1 = -1; /* the ink's box */
    for (int i = 0; i < n; i++) {
        FT_Face face = (FT_Face)fs->font[fonts[i]].face;
        if (FT_Load_Char(face, cp[i], FT_LOAD_RENDER) != 0)
            goto out;
        const FT_Bitmap *bm = &face->glyph->bitmap;
        if (bm->pixel_mode != FT_PIXEL_MODE_GRAY)
            continue;
        const int left = pen[i] + face->glyph->bitmap_left, top = base - face->glyph->bitmap_top + rise[i];
        for (unsigned r = 0; r < bm->rows; r++)
            for (unsigned c = 0; c < bm->width; c++) {
                int yy = top + (int)r, xx = left + (int)c;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W)
                    continue;
                float v = bm->buffer[(int)r * bm->pitch + (int)c] / 255.0f, *p = &a[(size_t)yy * W + xx];
                *p = v > *p ? v : *p;
                if (v > 0) {
                    r0 = yy < r0 ? yy : r0;
                    r1 = yy > r1 ? yy : r1;
                    c0 = xx < c0 ? xx : c0;
                    c1 = xx > c1 ? xx : c1;
                }
            }
    }
    return distort(a, H, W, r0, r1, c0, c1, st, rng, height);
out:
    free(a);
    return NULL;
}

/* A stroke of a round pen from (x0, y0), radius r0, to (x1, y1), radius r1, into a (H x W): each pixel covered by
 * how far its centre is inside the stroke, the brightest kept; box (r0, r1, c0, c1) grows to the ink. */
static void stroke(float *a, int H, int W, double x0, double y0, double r0, double x1, double y1, double r1, int box[4])
{
    const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy, m = fmax(r0, r1) + 1;
    const int ya = (int)fmax(0, floor(fmin(y0, y1) - m)), yb = (int)fmin(H - 1, ceil(fmax(y0, y1) + m));
    const int xa = (int)fmax(0, floor(fmin(x0, x1) - m)), xb = (int)fmin(W - 1, ceil(fmax(x0, x1) + m));
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            const double px = x + 0.5, py = y + 0.5;
            double t = len2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            const double d = hypot(px - (x0 + t * dx), py - (y0 + t * dy));
            double v = r0 + t * (r1 - r0) + 0.5 - d;
            if (v <= 0)
                continue;
            v = v > 1 ? 1 : v;
            float *q = &a[(size_t)y * W + x];
            *q = (float)v > *q ? (float)v : *q;
            box[0] = y < box[0] ? y : box[0];
            box[1] = y > box[1] ? y : box[1];
            box[2] = x < box[2] ? x : box[2];
            box[3] = x > box[3] ? x : box[3];
        }
}

/* A mark's strokes in the font's units (x right, y up from the baseline) about its letter's small body, which
 * spans columns x0..x1 below the x-height xh: n points of up to 2 strokes into p (a stroke ends where len says). */
static int mark_strokes(int mark, double x0, double x1, double xh, double p[2][5][2], int len[2])
{
    const double c = (x0 + x1) / 2, t = xh + 3;
    static const double ring[5][2] = {{0, 0}, {1.8, 1.8}, {0, 3.6}, {-1.8, 1.8}, {0, 0}};
    len[1] = 0;
    switch (mark) {
    case ACUTE:
        len[0] = 2, p[0][0][0] = c - 1.5, p[0][0][1] = t, p[0][1][0] = c + 2, p[0][1][1] = t + 4;
        return 1;
    case GRAVE:
        len[0] = 2, p[0][0][0] = c - 2, p[0][0][1] = t + 4, p[0][1][0] = c + 1.5, p[0][1][1] = t;
        return 1;
    case CIRCUMFLEX:
        len[0] = 3, p[0][0][0] = c - 3, p[0][0][1] = t, p[0][1][0] = c, p[0][1][1] = t + 3.5;
        p[0][2][0] = c + 3, p[0][2][1] = t;
        return 1;
    case DIAERESIS:
        len[0] = len[1] = 1, p[0][0][0] = c - 2.5, p[1][0][0] = c + 2.5, p[0][0][1] = p[1][0][1] = t + 1.5;
        return 2;
    case TILDE:
        len[0] = 4;
        for (int k = 0; k < 4; k++)
            p[0][k][0] = c - 3.5 + 2.33 * k, p[0][k][1] = t + 1.5 + (k & 1 ? 1.5 : -0.5);
        return 1;
    case DOT:
        len[0] = 1, p[0][0][0] = c, p[0][0][1] = t + 1.5;
        return 1;
    case RING:
        len[0] = 5;
        for (int k = 0; k < 5; k++)
            p[0][k][0] = c + ring[k][0], p[0][k][1] = t + ring[k][1];
        return 1;
    case OGONEK:
        len[0] = 4, p[0][0][0] = x1 - 1, p[0][0][1] = 0, p[0][1][0] = x1 - 3, p[0][1][1] = -3;
        p[0][2][0] = x1 - 1.5, p[0][2][1] = -5, p[0][3][0] = x1 + 0.5, p[0][3][1] = -4.5;
        return 1;
    case CEDILLA:
        len[0] = 4, p[0][0][0] = c, p[0][0][1] = 0, p[0][1][0] = c + 1.5, p[0][1][1] = -2.5;
        p[0][2][0] = c, p[0][2][1] = -4.5, p[0][3][0] = c - 2, p[0][3][1] = -4;
        return 1;
    case STROKE:
        len[0] = 2, p[0][0][0] = c - 3.5, p[0][0][1] = xh - 1.5, p[0][1][0] = c + 3.5, p[0][1][1] = xh + 2.5;
        return 1;
    default:
        return 0;
    }
}

/* The word in a hand drawn by strokes (hw_render). */
static hlr_tensor *render_strokes(const hw_fonts *fs, int font, const char *word, const hw_style *st, uint64_t *rng,
                                  int height)
{
    const hw_font *f = &fs->font[font];
    uint32_t cp[4 * WL_MAX_LEN];
    const struct hershey_glyph *g[4 * WL_MAX_LEN];
    int mark[4 * WL_MAX_LEN], n = code_points(word, cp, 4 * WL_MAX_LEN);
    if (n < 0)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!(g[i] = hand_glyph(f, cp[i], &mark[i])))
            return NULL;
    /* The hand of this word: its pen, the small letters' height against the tall ones' and the descenders',
     * and its width, in the font's units (a unit is a pixel at 32 px: the fonts' letters span about 33). */
    const double xh = f->xheight;
    double pen = 1.8, small = 1, tall = 1, wide = 1;
    if (st) {
        pen = between(rng, 0.8, 2.6);
        small = between(rng, 0.75, 1.2);
        tall = between(rng, 0.85, 1.35);
        wide = between(rng, 0.75, 1.2);
    }
    /* Each letter: its place, width, lean, rise and a slow wobble of its strokes. */
    double left[4 * WL_MAX_LEN], sx[4 * WL_MAX_LEN], lean[4 * WL_MAX_LEN], rise[4 * WL_MAX_LEN];
    double wob[4 * WL_MAX_LEN][4], x = PX / 2;
    for (int i = 0; i < n; i++) {
        sx[i] = wide * (st ? between(rng, 0.9, 1.1) : 1);
        lean[i] = st ? between(rng, -0.1, 0.1) : 0;
        rise[i] = st ? between(rng, -st->jitter, st->jitter) * PX : 0;
        for (int k = 0; k < 4; k++) /* amplitude across, amplitude up (units), frequency, phase */
            wob[i][k] = !st ? 0 : k < 2 ? between(rng, -0.6, 0.6) : k == 2 ? between(rng, 0.15, 0.5) : between(rng, 0, 6.3);
        left[i] = x;
        x += g[i]->width * sx[i];
        if (st)
            x += between(rng, -st->spacing / 2, st->spacing) * PX;
    }
    const int H = 3 * PX, W = (int)ceil(x) + PX, base = 2 * PX;
    float *a = calloc((size_t)H * W, sizeof *a);
    if (!a)
        return NULL;
    int box[4] = {H, -1, W, -1};
    const double phase = st ? between(rng, 0, 6.3) : 0, press = st ? between(rng, 0, 0.3) : 0;
    int vertex = 0; /* the pen's pressure varies slowly along the strokes */
#define MAP_Y(y) ((y) <= 0 ? (y) * tall : (y) <= xh ? (y) * small : xh * small + ((y) - xh) * tall)
#define PIX(i, vx, vy, px, py)                                                                                        \
    do {                                                                                                          \
        const double my = MAP_Y(vy);                                                                              \
        px = left[i] + (vx) * sx[i] + lean[i] * my + wob[i][0] * sin(wob[i][2] * my + wob[i][3]);               \
        py = base - rise[i] - my + wob[i][1] * sin(wob[i][2] * (vx) + wob[i][3]);                               \
    } while (0)
    for (int i = 0; i < n; i++) {
        double bx0 = 1e9, bx1 = -1e9; /* the letter's small body, for its mark */
        for (const struct hershey_path *p = g[i]->paths; p; p = p->next)
            for (int k = 0; k < p->nverts; k++)
                if (p->verts[k].y <= xh + 0.5) {
                    bx0 = fmin(bx0, p->verts[k].x);
                    bx1 = fmax(bx1, p->verts[k].x);
                }
        for (const struct hershey_path *p = g[i]->paths; p; p = p->next) {
            int above = 1; /* a path wholly above the x-height: an i's dot, left out under an accent */
            for (int k = 0; k < p->nverts; k++)
                above &= p->verts[k].y > xh + 0.5;
            if (mark[i] && above)
                continue;
            double px0, py0, r0 = pen / 2 * (1 + press * sin(phase + 0.3 * vertex++));
            PIX(i, p->verts[0].x, p->verts[0].y, px0, py0);
            if (p->nverts == 1)
                stroke(a, H, W, px0, py0, r0 * 1.2, px0, py0, r0 * 1.2, box);
            for (int k = 1; k < p->nverts; k++) {
                double px1, py1, r1 = pen / 2 * (1 + press * sin(phase + 0.3 * vertex++));
                PIX(i, p->verts[k].x, p->verts[k].y, px1, py1);
                stroke(a, H, W, px0, py0, r0, px1, py1, r1, box);
                px0 = px1, py0 = py1, r0 = r1;
            }
        }
        double mp[2][5][2];
        int len[2];
        const int strokes = bx1 >= bx0 ? mark_strokes(mark[i], bx0, bx1, xh, mp, len) : 0;
        for (int s = 0; s < strokes; s++) {
            double px0, py0, px1, py1;
            PIX(i, mp[s][0][0], mp[s][0][1], px0, py0);
            if (len[s] == 1)
                stroke(a, H, W, px0, py0, pen / 2 * 1.3, px0, py0, pen / 2 * 1.3, box);
            for (int k = 1; k < len[s]; k++) {
                PIX(i, mp[s][k][0], mp[s][k][1], px1, py1);
                stroke(a, H, W, px0, py0, pen / 2, px1, py1, pen / 2, box);
                px0 = px1, py0 = py1;
            }
        }
    }
#undef PIX
#undef MAP_Y
    return distort(a, H, W, box[0], box[1], box[2], box[3], st, rng, height);
}
