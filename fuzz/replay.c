/* Runs a fuzz target's inputs without libFuzzer: linked with one of
 * fuzz_idx.c, fuzz_load.c or fuzz_graph.c and built by the regular compiler
 * (the test suite's fuzz_replay tests, tests/meson.build), it calls
 * LLVMFuzzerTestOneInput once on every file given, a directory standing for
 * its files in name order:
 *     fuzz_replay_idx fuzz/corpus/idx crash-1234
 * TAP: one `ok` per file (a broken check aborts with its message, as under
 * libFuzzer).  Built with -DFZ_REPLAY_GRAPH (with fuzz_graph.c), it then
 * has one line per op of ops/ops.def: `ok` when some input made the op's
 * builder return a tensor, `not ok` naming the op when none did (no fuzzer
 * entry reaches it: the corpus lacks it, see fuzz/corpus.c). */
#include "fuzz_common.h"

#include <dirent.h>
#include <sys/stat.h>

#ifdef FZ_REPLAY_GRAPH
#include "ops.h"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct list {
    char **path;
    size_t n, cap;
} list;

static void push(list *l, const char *dir, const char *name)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->path = realloc(l->path, l->cap * sizeof *l->path);
        FZ_CHECK(l->path, "out of memory");
    }
    size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *p = malloc(len);
    FZ_CHECK(p, "out of memory");
    snprintf(p, len, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
    l->path[l->n++] = p;
}

/* path, or the regular files of directory path by name */
static void collect(list *l, const char *path)
{
    struct stat sb;
    FZ_CHECK(stat(path, &sb) == 0, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        push(l, NULL, path);
        return;
    }
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, alphasort);
    FZ_CHECK(n >= 0, "%s: %s", path, strerror(errno));
    for (int i = 0; i < n; i++) {
        size_t before = l->n;
        push(l, path, ents[i]->d_name);
        if (stat(l->path[before], &sb) != 0 || !S_ISREG(sb.st_mode))
            free(l->path[--l->n]);
        free(ents[i]);
    }
    free(ents);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    FZ_CHECK(f, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    FZ_CHECK(b, "out of memory");
    for (;;) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        b = realloc(b, cap);
        FZ_CHECK(b, "out of memory");
    }
    FZ_CHECK(!ferror(f), "%s: read error", path);
    fclose(f);
    *len = n;
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE... (a corpus, e.g. fuzz/corpus/graph)\n", argv[0]);
        return 2;
    }
    list l = {NULL, 0, 0};
    for (int i = 1; i < argc; i++)
        collect(&l, argv[i]);
    int ops = 0;
#ifdef FZ_REPLAY_GRAPH
    ops = TG_OP_COUNT;
#endif
    printf("1..%zu\n", l.n + (size_t)ops + (l.n == 0));
    int t = 0, failed = 0;
    if (l.n == 0) {
        printf("not ok %d - no input files in the arguments\n", ++t);
        failed++;
    }
    LLVMFuzzerInitialize(&argc, &argv);
    for (size_t i = 0; i < l.n; i++) {
        size_t len;
        uint8_t *data = slurp(l.path[i], &len);
        int rc = LLVMFuzzerTestOneInput(data, len);
        free(data);
        printf("%s %d - %s (%zu bytes)\n", rc == 0 ? "ok" : "not ok", ++t, l.path[i], len);
        failed += rc != 0;
        fflush(stdout);
        free(l.path[i]);
    }
    free(l.path);
#ifdef FZ_REPLAY_GRAPH
    for (int id = 0; id < TG_OP_COUNT; id++) {
        size_t n = fz_graph_reached(id);
        if (n) {
            printf("ok %d - op %s: reached by the fuzz corpus (%zu results)\n", ++t,
                   tg_ops[id]->name, n);
        } else {
            printf("not ok %d - op %s: no fuzzer entry reached it\n", ++t, tg_ops[id]->name);
            printf("#   ops/ops.def lists %s, but no input made fz_%s (fuzz/fuzz_graph.c) return "
                   "a tensor: give it valid inputs in the every_op program of fuzz/corpus.c "
                   "and regenerate the corpus (fuzz/README.md)\n",
                   tg_ops[id]->name, tg_ops[id]->name);
            failed++;
        }
    }
#endif
    return failed ? 1 : 0;
}
