/*
 * options.h -- the example programs' command-line options: one table per
 * program, one parser, and one line on stderr for every mistake, naming the
 * option and the value ("hlr-mnist: --limit 0 is out of range: expected a
 * whole number from 1 to 100000000 (leave --limit out for all images)").
 */
#ifndef HLR_EXAMPLES_OPTIONS_H
#define HLR_EXAMPLES_OPTIONS_H

typedef enum opt_type {
    OPT_STRING, /* const char **: the value as given */
    OPT_INT,    /* int *: a whole number in [lo, hi] */
    OPT_LONG,   /* long * */
    OPT_U64,    /* unsigned long long *: a whole number >= 0 */
    OPT_FLOAT,  /* float *: a finite number in [lo, hi], or (lo, hi] with lo_open */
    OPT_DOUBLE, /* double * */
    OPT_FLAG,   /* int *: set to 1; takes no value */
    OPT_APPEND, /* const char *[hi]: each time given, one more value; their count in *rest_count */
    OPT_REST    /* char ***: every argument after it (its count in *rest_count) */
} opt_type;

typedef struct opt_spec {
    const char *name; /* "--epochs" */
    opt_type type;
    void *dest;
    double lo, hi;    /* the allowed range of a number */
    int lo_open;      /* 1: the range excludes lo (e.g. a learning rate > 0) */
    const char *hint; /* said after a range error, e.g. "leave --limit out for all images"; may be NULL */
    int *seen;        /* set to 1 when the option is given; may be NULL */
    int *rest_count;  /* OPT_REST: how many arguments followed; OPT_APPEND: how many values */
} opt_spec;

/* Table entries: a string, a number in [lo, hi], a number in [lo, hi] with a
 * hint for the range error, a number in (lo, hi] with a hint, a flag. */
#define OPT_STR(n, d) {.name = (n), .type = OPT_STRING, .dest = (d)}
#define OPT_NUM(n, t, d, l, h) {.name = (n), .type = (t), .dest = (d), .lo = (l), .hi = (h)}
#define OPT_NUM_HINT(n, t, d, l, h, why) {.name = (n), .type = (t), .dest = (d), .lo = (l), .hi = (h), .hint = (why)}
#define OPT_POS_HINT(n, t, d, h, why)                                                                              \
    {.name = (n), .type = (t), .dest = (d), .lo = 0, .hi = (h), .lo_open = 1, .hint = (why)}
#define OPT_FLAG_(n, d) {.name = (n), .type = OPT_FLAG, .dest = (d)}

/*
 * Parse argv[first..argc) against specs (nspecs of them).  Arguments that do
 * not start with "--" are positional: they are collected into pos (at most
 * max_pos; more is an error).  Returns 0 when all is well, 1 when --help or -h
 * was given (the caller prints its usage to stdout and exits 0), and -1 after
 * printing one line to stderr that names the option and value at fault.
 */
int parse_options(const char *prog, int argc, char **argv, int first, const opt_spec *specs, int nspecs,
                  const char **pos, int max_pos, int *npos);

#endif
