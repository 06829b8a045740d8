// LD_PRELOAD counter for scripts/bench-ipvs-host (COUNT=clock): counts clock_gettime
// and epoll_wait calls (clock reads and the runtime's wakes) per thread into
// CLOCKCOUNT_FILE, a shared mapping the script reads: 2 x 65,536 u64 slots indexed
// by tid & 0xffff, clock reads first. Then calls the real function (clock_gettime:
// the vDSO on the host; in a VM with the HPET as clocksource, a system call).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 65536
static int (*real_clock)(clockid_t, struct timespec *);
static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
static uint64_t *slots;
static __thread long my_tid;

__attribute__((constructor)) static void init(void) {
    real_clock = dlsym(RTLD_NEXT, "clock_gettime");
    real_epoll_wait = dlsym(RTLD_NEXT, "epoll_wait");
    const char *f = getenv("CLOCKCOUNT_FILE");
    if (!f) return;
    int fd = open(f, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return;
    if (ftruncate(fd, 2 * SLOTS * 8) != 0) { close(fd); return; }
    void *p = mmap(0, 2 * SLOTS * 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) slots = p;
}

static void count(int which) {
    if (!slots) return;
    if (!my_tid) my_tid = syscall(SYS_gettid);
    __atomic_fetch_add(&slots[which * SLOTS + (my_tid & 0xffff)], 1, __ATOMIC_RELAXED);
}

int clock_gettime(clockid_t c, struct timespec *ts) {
    count(0);
    if (!real_clock) real_clock = dlsym(RTLD_NEXT, "clock_gettime");
    return real_clock(c, ts);
}

int epoll_wait(int epfd, struct epoll_event *ev, int n, int timeout) {
    count(1);
    if (!real_epoll_wait) real_epoll_wait = dlsym(RTLD_NEXT, "epoll_wait");
    return real_epoll_wait(epfd, ev, n, timeout);
}
