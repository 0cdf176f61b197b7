/* What the tests of the tapegrad command (test_cli, test_views,
 * test_resume) share: the program's path, starting it as a user does (no
 * shell; stdin /dev/null, stdout and stderr into out.txt and err.txt of the
 * working directory), reading files back, and a temporary working
 * directory. */
#ifndef TG_TEST_RUN_H
#define TG_TEST_RUN_H

#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The program named by argv[1] as an absolute path (the tests run in a
 * temporary directory) into buf; false after a "Bail out!" line when there
 * is none or it cannot be run. */
static inline bool tr_prog(int argc, char **argv, const char *test, char *buf, size_t len)
{
    char cwd[2048];
    if (argc < 2) {
        printf("Bail out! usage: %s /path/to/tapegrad\n", test);
        return false;
    }
    if (argv[1][0] == '/')
        snprintf(buf, len, "%s", argv[1]);
    else if (getcwd(cwd, sizeof cwd))
        snprintf(buf, len, "%s/%s", cwd, argv[1]);
    if (access(buf, X_OK)) {
        printf("Bail out! cannot run %s: %s\n", argv[1], strerror(errno));
        return false;
    }
    return true;
}

/* Start argv[0] with argv and envp (NULL: this environment); 0 and the pid
 * in *pid, or posix_spawn's error number. */
static inline int tr_spawn(char *const *argv, char *const *envp, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, "err.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = posix_spawn(pid, argv[0], &fa, NULL, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    return e;
}

/* The file at path into buf as a string (empty when it cannot be read). */
static inline size_t tr_slurp(const char *path, char *buf, size_t len)
{
    size_t n = tap_slurp(path, buf, len - 1);
    buf[n] = 0;
    return n;
}

/* Run prog with the arguments from arg on (NULL-terminated) and wait; its
 * stdout and stderr into out and err as strings.  The exit status, or -1
 * when it did not exit. */
static inline int tr_vrun(const char *prog, char *out, size_t out_len, char *err,
                          size_t err_len, const char *arg, va_list ap)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)prog;
    for (const char *a = arg; a && n < 39; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    argv[n] = NULL;
    pid_t pid;
    int e = tr_spawn(argv, NULL, &pid);
    if (e) {
        snprintf(err, err_len, "spawn: %s", strerror(e));
        out[0] = 0;
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    tr_slurp("out.txt", out, out_len);
    tr_slurp("err.txt", err, err_len);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A new directory from tmpl (ending in XXXXXX, rewritten), made the working
 * directory; false after a "Bail out!" line. */
static inline bool tr_enter_tmp(char *tmpl)
{
    if (!mkdtemp(tmpl) || chdir(tmpl)) {
        printf("Bail out! cannot make a temporary directory: %s\n", strerror(errno));
        return false;
    }
    return true;
}

/* Remove the files of the working directory dir, then dir. */
static inline void tr_leave_tmp(const char *dir)
{
    DIR *dp = opendir(".");
    struct dirent *e;
    while (dp && (e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(e->d_name);
    if (dp)
        closedir(dp);
    if (chdir("/") || rmdir(dir))
        printf("# could not remove %s\n", dir);
}

#endif
