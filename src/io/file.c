/* Files: replacing a file atomically, and the messages of the I/O layer
 * (tg_msgf).
 *
 * The atomic writer is the one place where the library creates the files
 * it writes (tg_save, tg_dot_save, tg_dot_render).
 *
 * The target is the file `path` names after following symbolic links, as
 * open() would: saving to models/latest.tgm -> v3.tgm replaces v3.tgm and
 * latest.tgm stays a link (a dangling link's file is created).  A target
 * that exists and is not a regular file (a directory, FIFO, device, socket)
 * is refused before anything is created: renaming over it would silently
 * turn /dev/null or a FIFO into a regular file.
 *
 * The new contents go to a temporary file "<target>.tmp-XXXXXX" made by
 * mkstemp next to the target (so on the same file system, where rename is
 * atomic), with the permission bits the target has or a new file would get.
 * Commit flushes it, fsyncs it, renames it over the target and fsyncs the
 * directory, so that the target always holds either the complete old file
 * or the complete new one, also after a crash.  On any failure before the
 * rename the temporary file is removed and the target is left as it was.
 *
 * The checks are made before the rename, not atomically with it: a target
 * changed meanwhile by another process (a link retargeted, a regular file
 * replaced by a FIFO) is replaced as it is then. */
#define _XOPEN_SOURCE 700 /* S_ISVTX, S_IWOTH */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_SUFFIX ".tmp-XXXXXX"

/* ---- messages ------------------------------------------------------------ */

int tg_msgf(char *buf, size_t len, const char *what, const char *path, const char *fmt, ...)
{
    if (!buf || !len)
        return TG_ERR;
    int n = snprintf(buf, len, "%s%s%s%s", what ? what : "", what ? ": " : "", path ? path : "",
                     path ? ": " : "");
    if (n < 0 || (size_t)n >= len)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, len - (size_t)n, fmt, ap);
    va_end(ap);
    return TG_ERR;
}

/* ---- the atomic writer --------------------------------------------------- */

/* The writer's messages: "<fn>: <path>: ..." into a->msg. */
#define fail(a, ...) tg_msgf((a)->msg, sizeof (a)->msg, (a)->fn, (a)->path, __VA_ARGS__)

/* A step after the temporary file exists failed with errno e: remove it. */
static int fail_step(tg_atomic *a, const char *step, int e)
{
    if (a->f)
        fclose(a->f);
    a->f = NULL;
    unlink(a->tmp);
    tg_free(a->tmp);
    a->tmp = a->target = NULL;
    return fail(a, "%s of the temporary file failed (%s); the old file is unchanged", step,
                strerror(e));
}

/* The permission bits open(path, O_CREAT, 0666) would give: the old file's
 * when it exists, else 0666 & ~umask.  The umask is read from /proc on Linux
 * (umask() can only read it by changing it, which races with other
 * threads); elsewhere a new file gets 0644. */
static mode_t new_file_mode(const char *path)
{
    struct stat st;
    if (!stat(path, &st))
        return st.st_mode & 0777;
    mode_t mode = 0644;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            unsigned um;
            if (sscanf(line, "Umask: %o", &um) == 1) {
                mode = 0666 & ~(mode_t)um;
                break;
            }
        }
        fclose(f);
    }
    return mode;
}

/* ---- what path names --------------------------------------------------- */

#define MAX_LINKS 40 /* symbolic links followed, as Linux's MAXSYMLINKS */

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "a file of an unknown type";
}

/* Refuse a target of mode m that is not a regular file; target is NULL when
 * it is path itself. */
static int not_regular(tg_atomic *a, const char *target, mode_t m)
{
    if (!target)
        return fail(a, "is %s, not a regular file; refusing to replace it", kind_of(m));
    return fail(a, "links to '%s', %s, not a regular file; refusing to replace it", target,
                kind_of(m));
}

/* The kernel's fs.protected_symlinks rule, applied whatever that setting:
 * a link in a sticky world-writable directory (such as /tmp) is followed
 * only when its owner is this process's effective user or the directory's
 * owner, so that another user's link there cannot make us (perhaps root)
 * replace a file of their choosing.  st is the link's lstat. */
static int check_owner(tg_atomic *a, char *link, const struct stat *st)
{
    char *slash = strrchr(link, '/');
    struct stat d;
    int rc;
    if (!slash)
        rc = stat(".", &d);
    else if (slash == link)
        rc = stat("/", &d);
    else {
        *slash = 0;
        rc = stat(link, &d);
        *slash = '/';
    }
    if (rc || !(d.st_mode & S_ISVTX) || !(d.st_mode & S_IWOTH) || st->st_uid == geteuid() ||
        st->st_uid == d.st_uid)
        return TG_OK;
    return fail(a, "will not follow the symbolic link '%s': it is owned by uid %u, in a sticky "
                "world-writable directory owned by uid %u (the fs.protected_symlinks rule)",
                link, (unsigned)st->st_uid, (unsigned)d.st_uid);
}

/* What the symbolic link `link` leads to, as a path (tg_malloc'ed): its
 * text, relative to the link's directory unless absolute.  size is the
 * link's st_size (0 where a file system does not tell it). */
static char *read_link(tg_atomic *a, const char *link, off_t size)
{
    const char *slash = strrchr(link, '/');
    size_t dir = slash ? (size_t)(slash - link) + 1 : 0; /* "dir/" kept for a relative text */
    for (size_t cap = size > 0 ? (size_t)size + 1 : 256; cap <= ((size_t)1 << 20); cap *= 2) {
        char *p = tg_malloc(dir + cap);
        if (!p) {
            fail(a, "out of memory");
            return NULL;
        }
        ssize_t n = readlink(link, p + dir, cap);
        if (n < 0) {
            int e = errno;
            tg_free(p);
            fail(a, "cannot read the symbolic link '%s': %s", link, strerror(e));
            return NULL;
        }
        if ((size_t)n < cap) { /* else the text may be cut: try a larger buffer */
            if (n > 0 && p[dir] == '/') {
                memmove(p, p + dir, (size_t)n);
                dir = 0;
            } else {
                memcpy(p, link, dir);
            }
            p[dir + (size_t)n] = 0;
            return p;
        }
        tg_free(p);
    }
    fail(a, "cannot read the symbolic link '%s': %s", link, strerror(ENAMETOOLONG));
    return NULL;
}

/* Follow path while it names a symbolic link.  TG_OK with *target NULL when
 * path is not a link (it is a regular file, or does not exist: mkstemp
 * then says what is wrong), else the file the links lead to (tg_malloc'ed),
 * a regular file or one that does not exist yet.  TG_ERR (a->msg says why)
 * for anything else. */
static int resolve(tg_atomic *a, char **target)
{
    *target = NULL;
    struct stat st;
    if (lstat(a->path, &st))
        return TG_OK;
    if (!S_ISLNK(st.st_mode))
        return S_ISREG(st.st_mode) ? TG_OK : not_regular(a, NULL, st.st_mode);
    size_t len = strlen(a->path);
    char *cur = tg_malloc(len + 1);
    if (!cur)
        return fail(a, "out of memory");
    memcpy(cur, a->path, len + 1);
    for (int links = 1; S_ISLNK(st.st_mode); links++) {
        char *next = NULL;
        if (links > MAX_LINKS)
            fail(a, "cannot follow the symbolic link: %s", strerror(ELOOP));
        else if (!check_owner(a, cur, &st))
            next = read_link(a, cur, st.st_size);
        tg_free(cur);
        if (!(cur = next))
            return TG_ERR;
        if (lstat(cur, &st))
            break; /* a dangling link: the file is created */
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
            not_regular(a, cur, st.st_mode);
            tg_free(cur);
            return TG_ERR;
        }
    }
    *target = cur;
    return TG_OK;
}

/* ---- open, abort, commit ------------------------------------------------- */

int tg_atomic_open(tg_atomic *a, const char *fn, const char *path)
{
    memset(a, 0, sizeof *a);
    a->fn = fn;
    a->path = path;
    char *link_target;
    if (resolve(a, &link_target))
        return TG_ERR;
    /* one allocation: "<target>.tmp-XXXXXX\0<target>\0" */
    const char *target = link_target ? link_target : path;
    size_t len = strlen(target);
    if (len > (SIZE_MAX - sizeof TMP_SUFFIX - 1) / 2 ||
        !(a->tmp = tg_malloc(2 * len + 1 + sizeof TMP_SUFFIX))) {
        tg_free(link_target);
        return fail(a, "out of memory");
    }
    memcpy(a->tmp, target, len);
    memcpy(a->tmp + len, TMP_SUFFIX, sizeof TMP_SUFFIX);
    a->target = a->tmp + len + sizeof TMP_SUFFIX;
    memcpy(a->target, target, len + 1);
    bool linked = link_target != NULL;
    tg_free(link_target);
    mode_t mode = new_file_mode(a->target);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int e = errno;
        if (linked)
            fail(a, "cannot create a temporary file in the directory of '%s' (where the symbolic "
                 "link leads): %s", a->target, strerror(e));
        else
            fail(a, "cannot create a temporary file in its directory: %s", strerror(e));
        tg_free(a->tmp);
        a->tmp = a->target = NULL;
        return TG_ERR;
    }
    /* not inherited by programs started meanwhile (tg_dot_render runs dot) */
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    const char *step = NULL;
    if (fchmod(fd, mode))
        step = "chmod";
    else if (!(a->f = fdopen(fd, "w")))
        step = "fdopen";
    if (step) {
        int e = errno;
        close(fd);
        return fail_step(a, step, e);
    }
    errno = 0; /* so that commit can tell the errno of a failed write */
    return TG_OK;
}

void tg_atomic_abort(tg_atomic *a)
{
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
    tg_free(a->tmp);
    a->f = NULL;
    a->tmp = a->target = NULL;
}

/* fsync the directory holding the file tmp names (tmp is overwritten), so
 * that the rename itself survives a crash.  A directory that cannot be
 * opened, or a file system that cannot sync directories (EINVAL, EROFS), is
 * not an error: there is nothing more to do. */
static int sync_dir(tg_atomic *a)
{
    char *dir = a->tmp, *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return TG_OK;
    int rc = TG_OK;
    if (fsync(fd) && errno != EINVAL && errno != EROFS)
        rc = fail(a, "the file was replaced, but fsync of its directory failed: %s",
                  strerror(errno));
    close(fd);
    return rc;
}

int tg_atomic_commit(tg_atomic *a)
{
    const char *step = NULL;
    if (fflush(a->f) || ferror(a->f))
        step = "write";
    else if (fsync(fileno(a->f)))
        step = "fsync";
    if (step)
        return fail_step(a, step, errno ? errno : EIO);
    int rc = fclose(a->f);
    a->f = NULL;
    if (rc)
        return fail_step(a, "close", errno);
    if (rename(a->tmp, a->target))
        return fail_step(a, "rename", errno);
    rc = sync_dir(a);
    tg_free(a->tmp);
    a->tmp = a->target = NULL;
    return rc;
}
