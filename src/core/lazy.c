/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lazy-internal.h"
#include "log.h"
#include "macro.h"
#include "parasite.h"
#include "transfer.h"
#include "vma.h"

#define TRACEE_POLL_USEC (5 * USEC_PER_MSEC)

/* ---- the followed tasks ---- */

static void on_task_event(Tracee *t, TraceeThread *th, TraceeFollowEvent ev, int status, void *userdata) {
        LazyRestore *l = userdata;
        Space *s = th->tag;

        switch (ev) {
        case TRACEE_FOLLOW_EXIT:
                /* How the process ended: the first of its threads to report
                 * says (a fatal signal ends them all). */
                if (s == l->spaces[0] && !th->vforked && !l->exited) {
                        l->exited = true;
                        l->exit_status = status;
                        l->exited_at = now_usec(CLOCK_MONOTONIC);
                }
                break;
        case TRACEE_FOLLOW_FORK:
                /* A fork has an address space of its own: the newest one, whose
                 * userfaultfd event was read before the parent could report the
                 * fork. */
                if (l->n_spaces > 1) {
                        s = th->tag = l->spaces[l->n_spaces - 1];
                        if (s->pid == 0)
                                s->pid = th->tid;
                }
                break;
        case TRACEE_FOLLOW_THREAD:
                break; /* shares its parent's */
        case TRACEE_FOLLOW_EXEC:
                if (th->vforked) {
                        /* A process that borrowed its parent's memory (vfork(),
                         * posix_spawn()) runs a new program in memory of its
                         * own: the parent's, which we still fill, stays. */
                        th->vforked = false;
                        th->tag = NULL;
                        break;
                }
                /* A new program: the memory we were filling is gone. */
                if (s) {
                        pthread_rwlock_wrlock(&l->lock);
                        lazy_space_close(l, s);
                        pthread_rwlock_unlock(&l->lock);
                }
                break;
        }
}

static bool all_done(LazyRestore *l) {
        for (size_t k = 0; k < l->n_spaces; k++)
                if (!l->spaces[k]->dead && atomic_load(&l->spaces[k]->set.outstanding) > 0)
                        return false;
        return true;
}

static bool target_gone(LazyRestore *l) {
        for (size_t i = 0; i < l->tracee->n_threads; i++)
                if (!l->tracee->threads[i].gone && l->tracee->threads[i].tag == l->spaces[0])
                        return false;
        return true;
}

/* Everything is in: unregister (by closing), and let every task go. */
static void release_all(LazyRestore *l) {
        lazy_stop_workers(l);
        lazy_keeper_stop(&l->keeper);
        for (size_t k = 0; k < l->n_spaces; k++)
                lazy_space_close(l, l->spaces[k]);
        /* Newest first: a vfork()ed child before its parent, which cannot
         * stop while it waits for the child to start its program. */
        for (size_t i = l->tracee->n_threads; i > 0; i--)
                tracee_follow_release(l->tracee, &l->tracee->threads[i - 1]);
        l->released = true;
        if (l->complete_at == 0)
                l->complete_at = now_usec(CLOCK_MONOTONIC);
}

static void kill_all(LazyRestore *l) {
        lazy_stop_workers(l);
        /* Each task is a member of a process we must not let run with pages
         * missing. */
        tracee_follow_kill(l->tracee);
        lazy_keeper_stop(&l->keeper);
        for (size_t k = 0; k < l->n_spaces; k++)
                lazy_space_close(l, l->spaces[k]);
        l->released = true;
}

/* Children done, or gone, are let go one by one. */
static void release_children(LazyRestore *l) {
        for (size_t k = 1; k < l->n_spaces; k++) {
                Space *s = l->spaces[k];
                bool known = false, alive = false;
                for (size_t i = 0; i < l->tracee->n_threads; i++)
                        if (l->tracee->threads[i].tag == s) {
                                known = true;
                                if (!l->tracee->threads[i].gone)
                                        alive = true;
                        }
                /* A fresh child is not known until its parent reports the fork. */
                if (!s->dead && known && (atomic_load(&s->set.outstanding) == 0 || !alive)) {
                        pthread_rwlock_wrlock(&l->lock);
                        lazy_space_close(l, s);
                        pthread_rwlock_unlock(&l->lock);
                        for (size_t i = l->tracee->n_threads; i > 0; i--) /* newest first */
                                if (l->tracee->threads[i - 1].tag == s)
                                        tracee_follow_release(l->tracee, &l->tracee->threads[i - 1]);
                }
        }
}

/* ---- start ---- */

typedef struct EagerSet {
        const bool *registered;
        const uint64_t *stacks; /* every thread's stack pointer */
        size_t n_stacks;
} EagerSet;

/* Written before the target runs: areas that cannot be registered (private
 * file mappings), and the chunks under the threads' stack pointers, which
 * they touch first thing. */
static bool eager_chunk(const Dump *d, size_t idx, const EagerSet *e) {
        const struct dump_chunk *c = &d->chunks[idx];

        if (!e->registered[c->region])
                return true;
        for (size_t i = 0; i < e->n_stacks; i++)
                if (e->stacks[i] >= c->addr && e->stacks[i] - 512 < c->addr + c->raw_len)
                        return true;
        return false;
}

static bool holds_stack(const EagerSet *e, const struct dump_region *reg) {
        for (size_t i = 0; i < e->n_stacks; i++)
                if (e->stacks[i] >= reg->start && e->stacks[i] < reg->end)
                        return true;
        return false;
}

/* prctl() in the target; its result, or -errno. */
static int remote_prctl(Tracee *t, int option, uint64_t arg) {
        uint64_t args[6] = { (uint64_t) option, arg };
        int64_t v;
        int r;

        r = tracee_syscall(t, SYS_prctl, args, &v);
        if (r < 0)
                return r;
        return v < 0 && v >= -4095 ? (int) v : (int) MIN(v, (int64_t) INT32_MAX);
}

/* The userfaultfd made inside the target, from our /dev/userfaultfd. Both
 * sit in the target's descriptor table for a moment: nobody else may take
 * them. Nobody shares the table and every task of the target is held (see
 * fd_table_private(), checked at the checkpoint); a process of the target's
 * own user could still use pidfd_getfd(), so the target is not dumpable
 * meanwhile (only CAP_SYS_PTRACE passes then), and both are gone from the
 * table before it is dumpable again. */
static int make_userfaultfd(Frozen *f, Parasite *p, int dev_fd, int *ret_uffd) {
        int dumpable, r, k;

        dumpable = remote_prctl(f->tracee, PR_GET_DUMPABLE, 0);
        if (dumpable < 0)
                return log_debug_errno(dumpable, "prctl(PR_GET_DUMPABLE) in %i failed: %m", f->pid);
        if (dumpable == 1) {
                r = remote_prctl(f->tracee, PR_SET_DUMPABLE, 0);
                if (r < 0)
                        return log_debug_errno(r, "prctl(PR_SET_DUMPABLE, 0) in %i failed: %m", f->pid);
        }
        r = parasite_userfaultfd(p, dev_fd, ret_uffd);
        if (dumpable == 1) {
                k = remote_prctl(f->tracee, PR_SET_DUMPABLE, 1);
                if (k < 0)
                        log_debug_errno(k, "making %i dumpable again failed: %m", f->pid);
        }
        return r;
}

/* The eager set, written while the target waits. */
static int write_eagerly(LazyRestore *l, const EagerSet *e) {
        _cleanup_free_ uint32_t *list = calloc(MAX(l->dump->n_chunks, (size_t) 1), sizeof(uint32_t));
        size_t n = 0;

        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < l->dump->n_chunks; i++)
                if (eager_chunk(l->dump, i, e))
                        list[n++] = (uint32_t) i;
        return transfer_chunks_from_dump(l->dump, l->frozen->mem_fd, l->pid, list, n);
}

/* Everything but the target and its Frozen. */
static void free_resources(LazyRestore *l) {
        lazy_keeper_stop(&l->keeper);
        lazy_spaces_free(l);
        free(l->retries);
        safe_close(l->epoll_fd);
        safe_close(l->timer_fd);
        if (l->fault_raw) {
                explicit_bzero(l->fault_raw, l->dump->header.chunk_size);
                free(l->fault_raw);
                dump_worker_done(&l->fault_worker);
        }
        pthread_rwlock_destroy(&l->lock);
        pthread_mutex_destroy(&l->wait_lock);
        pthread_cond_destroy(&l->wait_cond);
        free(l);
}

/* A start that failed: the target stays frozen in its Frozen, unless areas
 * were registered already (it cannot run without us any more). */
static void start_abortp(LazyRestore **lp) {
        LazyRestore *l = *lp;

        if (!l)
                return;
        if (l->kill_on_failure) {
                log_debug("lazy restore of %i failed after registering, killing it", l->pid);
                memcr_kill(l->frozen);
        }
        free_resources(l);
}

static int lazy_new(Frozen *f, LazyRestore **ret) {
        LazyRestore *l = calloc(1, sizeof(LazyRestore));
        if (!l)
                return -ENOMEM;
        l->started = now_usec(CLOCK_MONOTONIC);
        l->frozen = f;
        l->dump = f->dump;
        l->pid = f->pid;
        l->epoll_fd = l->timer_fd = -EBADF;
        l->keeper = LAZY_KEEPER_NULL;
        pthread_rwlock_init(&l->lock, NULL);
        pthread_mutex_init(&l->wait_lock, NULL);
        pthread_cond_init(&l->wait_cond, NULL);
        *ret = l;

        l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        l->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (l->epoll_fd < 0 || l->timer_fd < 0)
                return -errno;
        struct itimerspec its = { .it_value.tv_nsec = TRACEE_POLL_USEC * 1000,
                                  .it_interval.tv_nsec = TRACEE_POLL_USEC * 1000 };
        struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
        if (timerfd_settime(l->timer_fd, 0, &its, NULL) < 0 ||
            epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->timer_fd, &tev) < 0)
                return -errno;

        /* The buffers for serving faults on our thread. */
        l->fault_raw = malloc(l->dump->header.chunk_size);
        if (!l->fault_raw)
                return -ENOMEM;
        int r = dump_worker_init(&l->fault_worker, l->dump);
        if (r < 0) {
                l->fault_raw = mfree(l->fault_raw);
        }
        return r;
}

/* The target makes its own userfaultfd: it is bound to the address space of
 * its creator. It becomes the first space. */
static int take_userfaultfd(LazyRestore *l, const LazyOptions *o, Space **ret) {
        _cleanup_parasite_ Parasite *p = NULL;
        _cleanup_close_ int uffd = -EBADF;
        struct uffdio_api api = {
                .api = UFFD_API,
                .features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
                            UFFD_FEATURE_EVENT_UNMAP,
        };
        int r;

        r = parasite_infect_full(l->frozen->tracee, PARASITE_INIT_NO_MEM, &p);
        if (r >= 0)
                r = make_userfaultfd(l->frozen, p, o->userfaultfd_dev, &uffd);
        if (r >= 0)
                r = parasite_cure(p);
        p = parasite_free(p);
        if (r < 0)
                return r;

        /* The handshake with the events needs CAP_SYS_PTRACE (fork events): we
         * make it, not the target. */
        if (ioctl(uffd, UFFDIO_API, &api) < 0)
                return log_debug_errno(-errno, "UFFDIO_API failed: %m");
        r = lazy_add_space(l, uffd, l->pid, ret);
        if (r < 0)
                return r;
        TAKE_FD(uffd);
        return 0;
}

/* Each thread's stack pointer, thread pointer and rseq area: touched first
 * thing (the kernel writes the rseq area on the way back). */
static int collect_stacks(const Tracee *t, uint64_t **ret, size_t *ret_n) {
        _cleanup_free_ uint64_t *stacks = calloc(MAX(t->n_threads, (size_t) 1) * 3, sizeof(uint64_t));
        size_t n = 0;

        if (!stacks)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_threads; i++) {
                ArchRegs regs;
                uint64_t rseq;

                if (tracee_thread_regs(t, i, &regs) < 0)
                        continue;
                stacks[n++] = arch_regs_sp(&regs);
                if (arch_regs_tls(&regs) != 0)
                        stacks[n++] = arch_regs_tls(&regs);
                if (tracee_thread_rseq(t->threads[i].tid, &rseq, NULL) > 0)
                        stacks[n++] = rseq;
        }
        *ret = TAKE_PTR(stacks);
        *ret_n = n;
        return 0;
}

/* Register every dumped anonymous area in missing mode. An area the kernel
 * refuses is restored whole, now. */
static int register_areas(LazyRestore *l, Space *s, EagerSet *e, bool *registered) {
        for (size_t i = 0; i < l->dump->n_regions; i++) {
                const struct dump_region *reg = &l->dump->regions[i];
                struct uffdio_register rg = {
                        .range = { .start = reg->start, .len = reg->end - reg->start },
                        .mode = UFFDIO_REGISTER_MODE_MISSING,
                };
                int r;

                if (!registered[i] || ioctl(s->uffd, UFFDIO_REGISTER, &rg) >= 0)
                        continue;
                log_debug_errno(-errno, "cannot register 0x%llx-0x%llx, restoring it first: %m",
                                (unsigned long long) reg->start, (unsigned long long) reg->end);
                registered[i] = false;
                r = write_eagerly(l, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The pages to stream: every chunk of a registered area not written yet,
 * the areas holding stacks first. */
static int plan_items(LazyRestore *l, Space *s, const EagerSet *e) {
        int r;

        r = item_set_reserve(&s->set, l->dump->n_chunks);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->dump->n_regions; i++) {
                const struct dump_region *reg = &l->dump->regions[i];

                if (!e->registered[i])
                        continue;
                uint8_t prio = holds_stack(e, reg) ? 0 : 1;
                for (uint64_t c = reg->first_chunk; c < reg->first_chunk + reg->n_chunks; c++) {
                        const struct dump_chunk *ch = &l->dump->chunks[c];
                        if (eager_chunk(l->dump, c, e))
                                continue; /* written already */
                        item_set_append(&s->set, ch->addr, (uint32_t) c, 0, ch->raw_len, prio);
                        l->total_bytes += ch->raw_len;
                }
        }
        /* Chunks are in address order, and so are the items made from them. */
        item_set_count(&s->set);
        return 0;
}

int lazy_restore_start(Frozen *f, const LazyOptions *o, LazyRestore **ret) {
        _cleanup_(start_abortp) LazyRestore *l = NULL;
        _cleanup_free_ bool *registered = NULL;
        _cleanup_free_ uint64_t *stacks = NULL;
        size_t n_stacks = 0;
        Space *main_space;
        int r;

        assert(f);
        assert(o);
        assert(ret);

        if (!f->tracee || !f->memory_out)
                return -ENOENT;
        if (f->no_lazy[0])
                return log_debug_errno(-EPERM, "no lazy restore of %i: %s", f->pid, f->no_lazy);
        r = dump_check_file(f->dump);
        if (r < 0) {
                log_debug_errno(r, "dump of %i failed verification, killing it: %m", f->pid);
                memcr_kill(f);
                return r;
        }

        r = lazy_new(f, &l);
        if (r < 0)
                return r;
        r = take_userfaultfd(l, o, &main_space);
        if (r < 0)
                return r;
        /* Before anything is registered with it. */
        r = lazy_keeper_start(f->pidfd, main_space->uffd, &l->keeper);
        if (r < 0)
                return log_debug_errno(r, "no keeper for the userfaultfd of %i: %m", f->pid);

        /* What the target needs before it may run is written first, while
         * nothing is registered yet (a write into a registered missing page
         * would wait for us): areas that cannot be registered (private file
         * mappings) and the chunks under the threads' stack pointers. */
        registered = calloc(MAX(l->dump->n_regions, (size_t) 1), sizeof(bool));
        if (!registered)
                return -ENOMEM;
        for (size_t i = 0; i < l->dump->n_regions; i++)
                registered[i] = !(l->dump->regions[i].vma_flags & VMA_FILE);
        r = collect_stacks(f->tracee, &stacks, &n_stacks);
        if (r < 0)
                return r;
        EagerSet eager = { .registered = registered, .stacks = stacks, .n_stacks = n_stacks };

        /* From here on, areas are registered with a userfaultfd of ours (or
         * being written): the target cannot run without us any more. */
        l->kill_on_failure = true;
        r = write_eagerly(l, &eager);
        if (r < 0)
                return r;
        r = register_areas(l, main_space, &eager, registered);
        if (r < 0)
                return r;
        r = plan_items(l, main_space, &eager);
        if (r < 0)
                return r;
        r = lazy_fill_present(l, main_space, registered);
        if (r < 0)
                return r;
        /* What was written before it runs is back already. */
        for (size_t i = 0; i < l->dump->n_chunks; i++)
                if (eager_chunk(l->dump, i, &eager)) {
                        l->total_bytes += l->dump->chunks[i].raw_len;
                        l->done_bytes += l->dump->chunks[i].raw_len;
                }

        /* Keep every thread under ptrace, and whatever they create, so that
         * our death takes them along; then let them run. */
        r = tracee_follow_start(f->tracee, main_space);
        if (r < 0)
                return r;
        l->running_at = now_usec(CLOCK_MONOTONIC);
        /* The target, and f with it, now belongs to us. */
        l->tracee = TAKE_PTR(f->tracee);
        f->memory_out = false;
        l->kill_on_failure = false;

        /* The background pass starts once the target runs. */
        (void) lazy_start_workers(l, o->fault_only ? 0 : (o->workers ?: transfer_default_workers()));

        log_debug("lazy restore of %i: running after %" PRIu64 " us, %" PRIu64 " bytes to stream", f->pid,
                  l->running_at - l->started, l->total_bytes - l->done_bytes);
        *ret = TAKE_PTR(l);
        return 0;
}

int lazy_restore_fd(LazyRestore *l) {
        return l->epoll_fd;
}

int lazy_restore_process(LazyRestore *l) {
        struct epoll_event evs[16];
        int n, r;

        if (l->released)
                return 1;

        n = epoll_wait(l->epoll_fd, evs, ELEMENTSOF(evs), 0);
        if (n < 0 && errno != EINTR)
                return -errno;
        r = lazy_serve(l, evs, MAX(n, 0));
        tracee_follow(l->tracee, on_task_event, l);

        if (r < 0)
                lazy_fatal(l, r);
        r = atomic_load(&l->fatal);
        if (r < 0) {
                log_debug_errno(r, "lazy restore of %i failed, killing it: %m", l->pid);
                kill_all(l);
                return r;
        }
        if (target_gone(l)) {
                log_debug("%i exited while its memory was streaming", l->pid);
                release_all(l);
                return 1;
        }
        release_children(l);
        if (all_done(l)) {
                release_all(l);
                return 1;
        }
        return 0;
}

void lazy_restore_progress(LazyRestore *l, LazyProgress *ret) {
        *ret = (LazyProgress) {
                .total_bytes = l->total_bytes,
                .done_bytes = MIN(atomic_load(&l->done_bytes), l->total_bytes),
                .faults = atomic_load(&l->faults),
                .spaces = l->n_spaces,
                .running_usec = l->running_at - l->started,
                .complete_usec = l->complete_at ? l->complete_at - l->started : 0,
                .exited = l->exited,
                .exit_status = l->exit_status,
                .exited_usec = l->exited ? l->exited_at - l->running_at : 0,
        };
}

LazyRestore *lazy_restore_free(LazyRestore *l) {
        Frozen *f;

        if (!l)
                return NULL;
        if (!l->released) {
                /* Not everything is in: it must not run on with holes. */
                log_debug("lazy restore of %i abandoned, killing it", l->pid);
                kill_all(l);
        }
        /* Every task was let go or collected: nothing left to detach. */
        l->tracee = tracee_free(l->tracee);
        f = l->frozen;
        free_resources(l);
        frozen_free(f);
        return NULL;
}
