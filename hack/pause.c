/* kubelite's pause: the sandbox container's only process. It holds the pod's namespaces,
 * reaps children re-parented to it, and exits 0 at once on SIGINT or SIGTERM. A static C
 * program rather than a shell loop: one process per pod instead of a shell plus a sleep,
 * and nothing to wake up every hour. Built by hack/images.sh. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        static const char version[] = "kubelite pause 1\n";
        return write(STDOUT_FILENO, version, sizeof version - 1) < 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = reap;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;) {
        pause();
    }
}
