/*
 * cpuid_avx2.c -- preloaded into a benchmark's other side (LD_PRELOAD), it shows that process a CPU
 * without AVX-512, so that a library which picks its kernels from CPUID (ONNX Runtime's MLAS) runs
 * its AVX2 ones on an AVX-512 machine, as libhlr's AVX2 build and OpenBLAS's Haswell kernel do for
 * `make bench ISA=avx2`.  ONNX Runtime has no switch for this; Intel's SDE is not in Debian, and
 * qemu's would time an emulator.
 *
 * How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID, on CPUs and hypervisors that offer it:
 * "cpuid_fault" in /proc/cpuinfo) makes each CPUID instruction raise SIGSEGV; the handler runs the
 * real CPUID (faulting off for that instruction), clears the AVX-512 and AMX feature bits (leaf 7)
 * and the opmask and ZMM state from the XSAVE features (leaf 13), and steps over the instruction.
 * Faulting is per thread and passed on to the threads a thread creates (not across execve).  The
 * handler stays installed: the program's own calls to sigaction and signal for SIGSEGV (Node resets
 * every signal's action at start, then installs its WebAssembly trap handler) are kept aside, not
 * made, and a SIGSEGV that is not a CPUID goes to what the program last installed (its mask blocked,
 * reset to the default after one call if it asked so), or kills the process as it would have.
 *
 * Limits: a thread that blocks SIGSEGV dies at its first CPUID (the kernel forces the default action
 * of a fault it cannot deliver); the program's sigaction calls for SIGSEGV are not made safe against
 * a fault in another thread at the same moment; and what the C library chose from CPUID before this
 * runs (its string and memory routines) keeps its AVX-512 versions.  None of these matter to ONNX
 * Runtime's kernels, which bench/ort.py checks were chosen under the cap.
 *
 * With CPUID_AVX2_REPORT=FILE, at exit it writes to FILE how many CPUIDs it answered (of them, how
 * many asked for leaf 7), so that the benchmark can show the cap took hold; if faulting cannot be
 * turned on it writes "unsupported" there at start, and the process runs uncapped.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* Leaf 7, subleaf 0: EBX AVX512F, DQ, IFMA, PF, ER, CD, BW, VL; ECX VBMI, VBMI2, VNNI, BITALG,
 * VPOPCNTDQ; EDX 4VNNIW, 4FMAPS, VP2INTERSECT, AVX512_FP16 and AMX-BF16, AMX-TILE, AMX-INT8.
 * Subleaf 1: EAX AVX512_BF16, EDX AVX10.  Leaf 13, subleaf 0: EAX bits 5-7 (opmask, ZMM_Hi256,
 * Hi16_ZMM) and 17-18 (AMX tile state).  Leaf 0x24 (AVX10's version and vector lengths): zeros. */
#define L7_EBX ((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31))
#define L7_ECX ((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14))
#define L7_EDX ((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25))
#define L7S1_EAX (1u << 5)
#define L7S1_EDX (1u << 19)
#define L13_EAX ((7u << 5) | (3u << 17))

static struct sigaction previous; /* what the program installed, or found installed */
static atomic_int capping;
static atomic_long answered, leaf7;

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction(void)
{
    static sigaction_fn real;
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "sigaction"); /* POSIX's spelling of a function from dlsym */
    return real;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (sig != SIGSEGV || !atomic_load(&capping))
        return real_sigaction()(sig, act, old);
    struct sigaction was = previous;
    if (act)
        previous = *act;
    if (old)
        *old = was;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, &old) == 0 ? old.sa_handler : SIG_ERR;
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (si->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) { /* cpuid */
        unsigned leaf = (unsigned)g[REG_RAX], sub = (unsigned)g[REG_RCX], a, b, c, d;
        syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
        __cpuid_count(leaf, sub, a, b, c, d);
        syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
        if (leaf == 7 && sub == 0) {
            b &= ~L7_EBX;
            c &= ~L7_ECX;
            d &= ~L7_EDX;
            atomic_fetch_add(&leaf7, 1);
        } else if (leaf == 7 && sub == 1) {
            a &= ~L7S1_EAX;
            d &= ~L7S1_EDX;
        } else if (leaf == 13 && sub == 0) {
            a &= ~L13_EAX;
        } else if (leaf == 0x24) {
            a = b = c = d = 0;
        }
        g[REG_RAX] = a; /* CPUID writes the 32-bit registers: the upper halves become zero */
        g[REG_RBX] = b;
        g[REG_RCX] = c;
        g[REG_RDX] = d;
        g[REG_RIP] += 2;
        atomic_fetch_add(&answered, 1);
        return;
    }
    const struct sigaction p = previous;
    const int fault = si->si_code > 0; /* raised by the CPU, not sent by kill */
    const int plain = !(p.sa_flags & SA_SIGINFO);
    if (plain && p.sa_handler == SIG_IGN && !fault)
        return;
    if (!plain || (p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN)) {
        sigset_t was;
        if (p.sa_flags & SA_RESETHAND) {
            memset(&previous, 0, sizeof previous);
            previous.sa_handler = SIG_DFL;
        }
        pthread_sigmask(SIG_BLOCK, &p.sa_mask, &was);
        if (plain)
            p.sa_handler(sig);
        else
            p.sa_sigaction(sig, si, ctx);
        pthread_sigmask(SIG_SETMASK, &was, NULL);
    }
    /* An ignored fault is not ignored: the kernel kills the process, as here. */
    if ((!(previous.sa_flags & SA_SIGINFO) && previous.sa_handler == SIG_DFL) ||
        (fault && !(previous.sa_flags & SA_SIGINFO) && previous.sa_handler == SIG_IGN)) {
        /* the default (or what the program's handler left): returning re-runs a faulting instruction,
         * which now kills the process; a SIGSEGV sent by kill is raised again */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        atomic_store(&capping, 0);
        real_sigaction()(SIGSEGV, &dfl, NULL);
        if (si->si_code <= 0)
            raise(sig);
    }
}

static void report(const char *what)
{
    const char *path = getenv("CPUID_AVX2_REPORT");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f) {
        fputs(what, f);
        fclose(f);
    }
}

__attribute__((constructor)) static void cap(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK; /* a CPUID inside the program's own handler */
    sigemptyset(&sa.sa_mask);
    if (!real_sigaction() || real_sigaction()(SIGSEGV, &sa, &previous) != 0) {
        report("unsupported\n");
        return;
    }
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        real_sigaction()(SIGSEGV, &previous, NULL);
        report("unsupported\n");
        return;
    }
    atomic_store(&capping, 1);
}

__attribute__((destructor)) static void done(void)
{
    char line[96];
    snprintf(line, sizeof line, "answered %ld leaf7 %ld\n", atomic_load(&answered), atomic_load(&leaf7));
    if (atomic_load(&answered) > 0)
        report(line);
}
