/*
 * handwriting.h -- words drawn in Debian's handwriting fonts (FreeType),
 * distorted as hands distort them, for hlr-read's words task.
 *
 * Each font draws only the words whose every letter it has.  Some font
 * families are held out: the test renders words in them that the model
 * never saw in any font, so the test measures an unseen hand as well as
 * unseen words.
 */
#ifndef HLR_EXAMPLES_HANDWRITING_H
#define HLR_EXAMPLES_HANDWRITING_H

#include <hlr/hlr.h>
#include <stdint.h>

#define HW_MAX_FONTS 96

typedef struct hw_font {
    const char *package, *path, *family;
    int held_out;   /* 1: the test's fonts only */
    void *face;     /* FT_Face, or NULL for a hand drawn by strokes */
    void *strokes;  /* a hand drawn by strokes: its struct hershey_font (libhersheyfont), else NULL */
    double xheight; /* strokes: the height of its x above the baseline, in the font's units */
} hw_font;

typedef struct hw_fonts {
    void *lib; /* FT_Library */
    hw_font font[HW_MAX_FONTS];
    int n, missing; /* fonts opened; files of the table not installed */
} hw_fonts;

/* Open every installed font of the table; 0, or -1 after a line on stderr naming prog (FreeType failed,
 * or no training or no held-out font is installed: it names the packages). */
int hw_fonts_open(hw_fonts *fs, const char *prog);
void hw_fonts_close(hw_fonts *fs);

/* 1 when the font has a glyph for every character of the UTF-8 word, else 0. */
int hw_font_draws(const hw_fonts *fs, int font, const char *word);

/* A random font of the held-out set (held_out 1) or the training set (0) that draws the word; -1 for none.
 * Fonts only: hands drawn by strokes are picked by hw_pick_hand. */
int hw_pick_font(const hw_fonts *fs, int held_out, const char *word, uint64_t *rng);

/* A random hand drawn by strokes (Debian's Hershey fonts: single strokes, as a pen draws them) that draws the
 * word; -1 for none.  They are training hands: each word drawn in one is drawn anew, every letter's shape,
 * proportions and pen varied (hw_render), which a font's fixed outlines cannot do. */
int hw_pick_hand(const hw_fonts *fs, const char *word, uint64_t *rng);

/* How the word is distorted: all of it drawn from rng. */
typedef struct hw_style {
    double slant;     /* shear, x per y, either way up to this (0.4) */
    double rotate;    /* degrees either way (3) */
    double elastic;   /* displacement of the strokes in pixels at 32 px (2.0) */
    double jitter;    /* baseline jitter of each letter, fraction of the size (0.06) */
    double spacing;   /* extra space between letters, -spacing/2..spacing of the size (0.08) */
    double stretch;   /* the word's width scaled by 1 - stretch .. 1 + stretch (0.2) */
    double thickness; /* probability of a thinner or thicker stroke (0.5) */
    double blur;      /* probability of a blur (0.3) */
    double noise;     /* paper noise up to this (0.06) */
} hw_style;
extern const hw_style hw_style_default;

/* The word drawn in the font (at 32 px) and distorted by style (NULL: none), bright ink on 0, then as the
 * recogniser reads any picture: hlr_image_line(.., height, 2, HLR_IMAGE_LIGHT_INK).  Returns (1, height, w),
 * or NULL: not a word, a letter the font lacks, or out of memory.  In a hand drawn by strokes, style also
 * varies the pen's width, the height of the small letters against the tall ones, each letter's width and
 * lean and a wobble of its strokes (with NULL: the strokes as the font has them, a pen 1.8 px wide). */
hlr_tensor *hw_render(const hw_fonts *fs, int font, const char *word, const hw_style *style, uint64_t *rng, int height);

/* The same with each letter in its own font (fonts[i] for the word's i-th character; fonts, not hands drawn by
 * strokes). */
hlr_tensor *hw_render_letters(const hw_fonts *fs, const int *fonts, const char *word, const hw_style *style,
                              uint64_t *rng, int height);
/* For each letter of the word, a random training font that has it, into fonts; 0, or -1 when none has one. */
int hw_pick_letter_fonts(const hw_fonts *fs, const char *word, uint64_t *rng, int *fonts);

/* A uniform double in [0, 1) from a splitmix64 stream. */
double hw_uniform(uint64_t *rng);

#endif
