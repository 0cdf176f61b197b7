/* The op list itself (ops/ops.def): the generated table is consistent, each
 * op's attributes fit the node and are printable for DOT, and the header and
 * the README's API overview name every op's public function tg_<name>.
 *   test_oplist HEADER README */
#include "oplist.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        printf("Bail out! usage: test_oplist include/tapegrad.h README.md\n");
        return 1;
    }
    size_t hlen, rlen;
    char *header = tap_read_file(argv[1], &hlen), *readme = tap_read_file(argv[2], &rlen);
    if (!header || !readme) {
        printf("Bail out! cannot read %s or %s\n", argv[1], argv[2]);
        return 1;
    }
    ok(TG_OP_COUNT > 0, "ops/ops.def lists %d ops", (int)TG_OP_COUNT);
    for (int i = 0; i < TG_OP_COUNT; i++) {
        const tg_op *op = tg_ops[i];
        const char *name = op ? op->name : "(missing)";
        bool good = op && op->name && op->setup && op->forward && op->backward;
        good = good && tg_op_id_of(op) == (tg_op_id)i && tg_op_find(name) == (tg_op_id)i;
        ok(good, "op %s: entry %d of the table, found by name and by address, with setup, "
                 "forward and backward", name, i);
        if (!op)
            continue;
        ok(op->attr_size <= TG_ATTR_BYTES && (op->attr_size > 0) == (op->attr_str != NULL),
           "op %s: attributes of %zu bytes (<= %d) and an attr_str for DOT exactly when it has them",
           name, op->attr_size, TG_ATTR_BYTES);
        /* the public function: "tg_<name>(" declared in the header, named in the README */
        char fn[80];
        snprintf(fn, sizeof fn, "tg_%s(", name);
        ok(strstr(header, fn) != NULL, "op %s: include/tapegrad.h declares %s...)", name, fn);
        snprintf(fn, sizeof fn, "`tg_%s`", name);
        ok(strstr(readme, fn) != NULL, "op %s: the README's API overview names %s", name, fn);
    }
    free(header);
    free(readme);
    return tap_done();
}
