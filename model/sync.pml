/*
 * The sync protocol of pkgw for one contract and one target: the dispatcher, the
 * target's queue row, two replicas sharing it under leases, delivery with If-Match,
 * settling a 412, coalescing of versions, a pull that merges an edit made at the
 * target, a crash of each replica at any step, leases that run out at any time, and
 * requests that are slow, answered late or never. Each step is named after the function
 * in src/sync or src/store/sync.rs it stands for; docs/sync-model.md maps them.
 *
 * Checked by scripts/check-model.sh: spin -a model/sync.pml, then an exhaustive search
 * for assertion violations and invalid end states.
 *
 * Content: the gateway's version v is the number v; EDIT is a copy someone edited at
 * the target (different from every version the gateway has).
 */

#ifndef MAXV
#define MAXV    2       /* versions written through the gateway's API */
#endif
#ifndef FAULTS
#define FAULTS  2       /* faults in one run: crashes, leases running out, lost
                         * answers, timeouts, 503s (each run has at most this many, in
                         * any order and at any step) */
#endif
#define EDIT    15

/* An answer's status */
#define FAILED  0       /* no answer, or 5xx: tried again later */
#define OK      1       /* 200/201 */
#define STALE   2       /* 412 Precondition Failed */

byte faults;
#define fault (faults < FAULTS)

/* The gateway's store: contracts, contract_versions, outbox. */
byte head;              /* current version (0: not created yet) */
byte written;           /* versions written through the API */
bool by_target[8];      /* the version came from the target (a pull merged its edit) */
byte dispatched;        /* outbox rows dispatched: versions 1..dispatched */

/* sync_queue: the target's row for the contract. */
bool q_present;
byte q_version;
byte q_claimer;         /* claimed_by (0: nobody) */
bool q_lease;           /* claimed_until has not passed */
bool q_recheck;

/* sync_state: what the gateway knows the target holds. */
byte s_version;
byte s_etag;            /* 0: no version known (writes go without If-Match) */

/* The target. */
byte t_content;         /* 0: no copy */
byte t_etag;            /* the copy's version there */
byte t_writes;          /* versions the target has made: an ETag is never reused */
byte t_edited_from;     /* the copy an edit there was made on */
bool edit_done;         /* someone edited the copy there, or decided not to */
bool pull_done;         /* the edit was pulled (or there was none to pull) */

/* Requests on the way: one per replica, and one the gateway gave up on. */
bool r_present[3];
byte r_content[3];
byte r_ifmatch[3];
bool r_answered[3];
byte r_status[3];
byte r_etag[3];         /* the ETag the answer carries */
bool o_present;
byte o_content;
byte o_ifmatch;

byte live_id[3];        /* each replica's claimer id now */
bool busy[3];           /* a replica is between claim_due and recording the outcome */
bool dead_letter_written;

#define unfenced(r) (r_present[r] && !r_answered[r] && r_ifmatch[r] == 0)

#define quiet (written == MAXV && pull_done && dispatched == head && !q_present \
               && !busy[1] && !busy[2] && !r_present[1] && !r_present[2] && !o_present)

/* The target applies a PUT (an update with If-Match, or without). */
inline apply(content, ifmatch, status, etag) {
    if
    :: ifmatch != 0 && ifmatch != t_etag -> status = STALE
    :: else ->
        /* An older version never replaces a newer one by a write that names the
         * version it replaces (only an unconditional write, the first to a target,
         * can; the protocol then delivers the newer once more). */
        assert(ifmatch == 0 || t_content == EDIT || content >= t_content);
        t_writes++; t_etag = t_writes; t_content = content; status = OK; etag = t_etag
    fi
}

/* store::sync::queue: the newer version wins; the row is due. */
inline queue(v) {
    if
    :: q_present -> if :: v > q_version -> q_version = v :: else -> skip fi
    :: else -> q_present = true; q_version = v; q_claimer = 0; q_lease = false; q_recheck = false
    fi
}

/* store::sync::lost: the claim passed to another replica; deliver once more. */
inline lost() {
    queue(head); q_recheck = true
}

/* store::sync::release: the row goes if the version covers it and no recheck. */
inline release(v) {
    if
    :: q_version <= v && !q_recheck -> q_present = false
    :: else -> q_claimer = 0; q_lease = false
    fi
}

/* A replica's in-flight request when it crashes or gives up: one that names the
 * version it replaces may still arrive at any later time; one that does not takes
 * effect at once or never (assumption A1 in docs/sync-model.md). */
inline abandon(me) {
    if
    :: r_present[me] && !r_answered[me] && r_ifmatch[me] != 0 && !o_present ->
        o_present = true; o_content = r_content[me]; o_ifmatch = r_ifmatch[me]
    :: r_present[me] && !r_answered[me] && r_ifmatch[me] == 0 ->
        if
        :: apply(r_content[me], 0, r_status[me], r_etag[me])
        :: skip
        fi
    :: else -> skip
    fi;
    r_present[me] = false; r_answered[me] = false;
    r_content[me] = 0; r_ifmatch[me] = 0; r_status[me] = 0; r_etag[me] = 0
}

proctype Writer() {
    /* write::Writer: each version committed with its outbox row. */
    do
    :: atomic { written < MAXV -> written++; head++ }
    :: written == MAXV -> break
    od
}

proctype Dispatcher() {
    /* Engine::dispatch -> Store::dispatch_outbox, one outbox row per step. */
    do
    :: atomic {
        dispatched < head ->
        dispatched++;
        if
        :: !by_target[dispatched] -> queue(dispatched)        /* route: deliver_to */
        :: else ->                                            /* route: authored_by */
            /* forget_remote_versions_before: unless the pull recorded them */
            if :: s_version < dispatched -> s_etag = 0 :: else -> skip fi
        fi }
    :: quiet -> break
    od
}

proctype Clock() {
    /* claimed_until passes */
    do
    /* the lease of a live replica runs out while it works (a fault: it is slow);
     * never while it waits for a write without If-Match: sync::deliver::Fenced gives
     * such a request up when the lease runs out */
    :: atomic { (q_present && q_claimer != 0 && q_lease && fault
                 && !(q_claimer == live_id[1] && unfenced(1))
                 && !(q_claimer == live_id[2] && unfenced(2))) -> q_lease = false; faults++ }
    /* the lease of a process that died runs out, as time goes on */
    :: atomic { (q_present && q_claimer != 0 && q_lease
                 && q_claimer != live_id[1] && q_claimer != live_id[2]) -> q_lease = false }
    :: quiet -> break
    od
}

proctype Target() {
    byte ignored, ignored_etag;
    do
    :: atomic { r_present[1] && !r_answered[1] ->
            apply(r_content[1], r_ifmatch[1], r_status[1], r_etag[1]); r_answered[1] = true }
    :: atomic { r_present[2] && !r_answered[2] ->
            apply(r_content[2], r_ifmatch[2], r_status[2], r_etag[2]); r_answered[2] = true }
    :: atomic { o_present -> apply(o_content, o_ifmatch, ignored, ignored_etag);
                o_present = false; o_content = 0; o_ifmatch = 0; ignored = 0; ignored_etag = 0 }
    :: atomic { o_present -> o_present = false; o_content = 0; o_ifmatch = 0 }   /* lost on the way */
    :: atomic { !edit_done && t_content != 0 && t_content != EDIT ->
            /* someone edits the copy at the target */
            edit_done = true; t_edited_from = t_content; t_content = EDIT;
            t_writes++; t_etag = t_writes }
    :: atomic { !edit_done -> edit_done = true; pull_done = true }   /* no edit */
    :: quiet -> break
    od
}

proctype Puller() {
    /* sync::pull::merge: the target's edit merged by the write path as a new
     * version from the target; Store::holds records the target's copy as that version */
    atomic { edit_done && (pull_done || t_content == EDIT) };
    if
    :: pull_done -> skip
    :: else ->
        atomic {
            t_content == EDIT ->
            head++; by_target[head] = true;
            s_version = head; s_etag = t_etag;
            if
            :: t_edited_from == head - 1 -> t_content = head   /* the merge is the edit */
            :: else -> queue(head)    /* the merge holds changes the target has not seen */
            fi;
            pull_done = true
        }
    fi
}

proctype Replica(byte me) {
    byte id = me;           /* claimed_by: a restarted process has a new one */
    bool crashed = false;
    byte cv;                /* Claim::version */
    byte v;                 /* the version read and sent */
    byte im;                /* If-Match */
    byte etag;              /* the target's version of what was sent */
    byte status;
    byte copy;              /* the target's copy, as settle_conflict read it */
    bool known;             /* the gateway has recorded what the target holds */

#define CRASH if :: !crashed && fault -> faults++; goto crash :: true -> skip fi

idle:
    /* nothing of a finished delivery is kept (fewer states to search) */
    atomic { cv = 0; v = 0; im = 0; etag = 0; status = 0; copy = 0; known = false }
    do
    :: atomic { q_present && (q_claimer == 0 || !q_lease) ->
            /* Store::claim_due */
            q_claimer = id; q_lease = true; q_recheck = false; cv = q_version;
            busy[me] = true }
        goto deliver
    :: quiet -> goto done
    od;

deliver:
    /* sync::deliver::deliver reads what the target holds (Store::remote), then the
     * contract as it is now (Store::get) */
    CRASH;
    atomic { im = s_etag; known = (s_version != 0) }
    CRASH;
    v = head;
    /* sync::deliver::learn_versions: no version known there at all (never delivered):
     * the copy is read first */
    if
    :: !known ->
        CRASH;
        atomic {
            if
            :: t_content == 0 -> status = OK                      /* none: written without */
            :: t_content != 0 && t_content != EDIT && t_content <= v -> im = t_etag; status = OK   /* our own */
            :: t_content != EDIT && t_content > v -> status = FAILED  /* a newer of ours: later */
            :: t_content == EDIT -> copy = EDIT; status = STALE   /* changed there */
            fi
        }
        if
        :: status == STALE -> goto dead
        :: status == FAILED -> goto retry
        :: else -> skip
        fi
    :: else -> skip
    fi;
put:
    /* sync::deliver::put */
    CRASH;
    atomic {
        if
        /* sync::deliver::Fenced::send: a write without If-Match only while the lease
         * holds (the replica's own clock says so) */
        :: im == 0 && !(q_claimer == id && q_lease) -> status = FAILED
        :: else ->
            r_present[me] = true; r_content[me] = v; r_ifmatch[me] = im;
            r_answered[me] = false; status = OK
        fi
    }
    if
    :: status == FAILED -> goto retry
    :: else -> skip
    fi;
    CRASH;
    if
    :: atomic { r_answered[me] -> status = r_status[me]; etag = r_etag[me]; r_present[me] = false; r_answered[me] = false;
    r_content[me] = 0; r_ifmatch[me] = 0; r_status[me] = 0; r_etag[me] = 0 }
    :: atomic { r_answered[me] && fault -> faults++; r_present[me] = false; r_answered[me] = false;
    r_content[me] = 0; r_ifmatch[me] = 0; r_status[me] = 0; r_etag[me] = 0; status = FAILED }  /* answer lost */
    :: atomic { !r_answered[me] && fault -> faults++; abandon(me); status = FAILED }  /* timed out */
    :: atomic { !r_answered[me] && fault -> faults++; r_present[me] = false;
                r_content[me] = 0; r_ifmatch[me] = 0; status = FAILED }  /* 503: not applied */
    fi;
    if
    :: status == OK -> goto record
    :: status == FAILED -> goto retry
    :: status == STALE -> skip
    fi;
    /* sync::deliver::settle_conflict: read the target's copy */
    CRASH;
    atomic {
        if
        :: t_content == v -> etag = t_etag; status = 1                        /* Ours */
        :: t_content != EDIT && t_content != 0 && t_content < v -> im = t_etag; status = 2   /* Earlier */
        :: t_content != EDIT && t_content > v -> etag = t_etag; status = 1   /* Newer */
        :: else -> copy = t_content; status = 3                               /* changed there */
        fi
    }
    if
    :: status == 1 -> goto record
    :: status == 2 -> goto put                  /* written over, If-Match its version there */
    :: status == 3 -> goto dead
    fi;

record:
    /* Store::delivered */
    CRASH;
    atomic {
        if
        :: q_present && q_claimer == id ->      /* still_claimed */
            /* set_state: never back to an older version (a pull may have recorded
             * a newer one meanwhile) */
            if :: v >= s_version -> s_version = v; s_etag = etag :: else -> skip fi;
            release(v)
        :: else -> lost()
        fi;
        busy[me] = false
    }
    goto idle;

retry:
    /* Store::retry_later */
    CRASH;
    atomic {
        if
        :: q_present && q_claimer == id -> q_claimer = 0; q_lease = false
        :: else -> lost()
        fi;
        busy[me] = false
    }
    goto idle;

dead:
    /* Store::dead_letter */
    CRASH;
    atomic {
        if
        :: q_present && q_claimer == id ->
            /* a dead letter only for a copy someone changed at the target: a newer
             * copy of the gateway's own means another worker took the claim over */
            assert(copy == EDIT);
            dead_letter_written = true; release(cv)
        :: else -> lost()
        fi;
        busy[me] = false
    }
    goto idle;

crash:
    /* the process dies; it restarts with a new claimer id, and its lease stays until
     * it runs out */
    atomic { abandon(me); crashed = true; id = me + 2; live_id[me] = id; busy[me] = false }
    goto idle;

done:
    skip
}

init {
    atomic {
        live_id[1] = 1; live_id[2] = 2;
        run Writer(); run Dispatcher(); run Clock(); run Target(); run Puller();
        run Replica(1); run Replica(2)
    }
    (_nr_pr == 1);
    /* No accepted change is lost: the target holds the current version, and the
     * gateway knows it does. */
    assert(t_content == head);
    assert(s_version == head);
    /* and it knows the copy's version there, or the copy is what it recorded (a
     * late write of the same content: the next delivery's 412 settles as Ours) */
    assert(s_etag == t_etag || t_content == s_version)
}
