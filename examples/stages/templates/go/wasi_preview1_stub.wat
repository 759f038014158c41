;; wasi_snapshot_preview1 "stub" adapter for Newsroom Go stages.
;;
;; Go (GOOS=wasip1) imports WASI preview1. The official preview1 reactor adapter turns those
;; imports into WASI 0.2 imports, but it cannot be used with mainline Go: the Go runtime calls
;; clock_time_get while `_initialize` runs, the adapter then allocates its state through the
;; module's cabi_realloc, which is Go code that cannot run before the runtime is initialised
;; (the component traps at instantiation).
;;
;; This adapter implements preview1 inside the component instead, importing nothing but the
;; module's memory, so the component imports no WASI at all:
;;   - no args, no environment, no preopened files (fd_* and path_* answer EBADF);
;;   - stdout/stderr writes are accepted and dropped (fd 0 reads as empty);
;;   - both clocks are one counter that starts at 0 and advances 1 µs per reading (and by the
;;     timeout in poll_oneoff, so time.Sleep returns): a stage's only real clock is input.now-ms;
;;   - random_get is a fixed-seed xorshift64 stream (deterministic, not for secrets);
;;   - proc_exit (a Go fatal error or os.Exit) traps.
(module
  (import "env" "memory" (memory 0))
  (global $clock (mut i64) (i64.const 0))
  (global $rng (mut i64) (i64.const 0x2545F4914F6CDD1D))

  (func $tick (result i64)
    (global.set $clock (i64.add (global.get $clock) (i64.const 1000)))
    (global.get $clock))

  (func (export "args_sizes_get") (param $argc i32) (param $size i32) (result i32)
    (i32.store (local.get $argc) (i32.const 0))
    (i32.store (local.get $size) (i32.const 0))
    (i32.const 0))
  (func (export "args_get") (param i32 i32) (result i32) (i32.const 0))
  (func (export "environ_sizes_get") (param $n i32) (param $size i32) (result i32)
    (i32.store (local.get $n) (i32.const 0))
    (i32.store (local.get $size) (i32.const 0))
    (i32.const 0))
  (func (export "environ_get") (param i32 i32) (result i32) (i32.const 0))

  (func (export "clock_res_get") (param $id i32) (param $out i32) (result i32)
    (i64.store (local.get $out) (i64.const 1000))
    (i32.const 0))
  (func (export "clock_time_get") (param $id i32) (param $precision i64) (param $out i32) (result i32)
    (i64.store (local.get $out) (call $tick))
    (i32.const 0))

  (func (export "random_get") (param $buf i32) (param $len i32) (result i32)
    (local $x i64)
    (local.set $x (global.get $rng))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $len)))
        ;; xorshift64
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
        (i32.store8 (local.get $buf) (i32.wrap_i64 (local.get $x)))
        (local.set $buf (i32.add (local.get $buf) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $next)))
    (global.set $rng (local.get $x))
    (i32.const 0))

  ;; fd_write: accept everything, drop it.
  (func (export "fd_write") (param $fd i32) (param $iovs i32) (param $n i32) (param $written i32) (result i32)
    (local $total i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2)) (then (return (i32.const 8))))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $total (i32.add (local.get $total) (i32.load offset=4 (local.get $iovs))))
        (local.set $iovs (i32.add (local.get $iovs) (i32.const 8)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.store (local.get $written) (local.get $total))
    (i32.const 0))
  (func (export "fd_read") (param $fd i32) (param i32 i32) (param $read i32) (result i32)
    (if (i32.ne (local.get $fd) (i32.const 0)) (then (return (i32.const 8))))
    (i32.store (local.get $read) (i32.const 0))
    (i32.const 0))
  ;; fdstat of stdio: a character device with all rights.
  (func (export "fd_fdstat_get") (param $fd i32) (param $out i32) (result i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2)) (then (return (i32.const 8))))
    (i64.store (local.get $out) (i64.const 2))
    (i64.store offset=8 (local.get $out) (i64.const -1))
    (i64.store offset=16 (local.get $out) (i64.const -1))
    (i32.const 0))
  (func (export "fd_fdstat_set_flags") (param $fd i32) (param i32) (result i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2)) (then (return (i32.const 8))))
    (i32.const 0))
  (func (export "fd_close") (param $fd i32) (result i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2)) (then (return (i32.const 8))))
    (i32.const 0))

  ;; poll_oneoff: clock subscriptions fire at once (the clock jumps to their deadline),
  ;; fd subscriptions fail with EBADF.
  (func (export "poll_oneoff") (param $in i32) (param $out i32) (param $nsubs i32) (param $nevents i32) (result i32)
    (local $i i32) (local $sub i32) (local $ev i32) (local $tag i32) (local $t i64)
    (if (i32.eqz (local.get $nsubs)) (then (return (i32.const 28))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $nsubs)))
        (local.set $sub (i32.add (local.get $in) (i32.mul (local.get $i) (i32.const 48))))
        (local.set $ev (i32.add (local.get $out) (i32.mul (local.get $i) (i32.const 32))))
        (local.set $tag (i32.load8_u offset=8 (local.get $sub)))
        (i64.store (local.get $ev) (i64.load (local.get $sub)))
        (i64.store offset=8 (local.get $ev) (i64.const 0))
        (i64.store offset=16 (local.get $ev) (i64.const 0))
        (i64.store offset=24 (local.get $ev) (i64.const 0))
        (i32.store8 offset=10 (local.get $ev) (local.get $tag))
        (if (i32.eqz (local.get $tag))
          (then
            (local.set $t (i64.load offset=24 (local.get $sub)))
            (if (i32.and (i32.load16_u offset=40 (local.get $sub)) (i32.const 1))
              (then (if (i64.gt_u (local.get $t) (global.get $clock)) (then (global.set $clock (local.get $t)))))
              (else (global.set $clock (i64.add (global.get $clock) (local.get $t))))))
          (else (i32.store16 offset=8 (local.get $ev) (i32.const 8))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store (local.get $nevents) (local.get $nsubs))
    (i32.const 0))

  (func (export "sched_yield") (result i32) (i32.const 0))
  (func (export "proc_exit") (param i32) (unreachable))

  ;; Everything else: no files (EBADF), no sockets or signals (ENOSYS).
  (func (export "fd_advise") (param i32) (param i64) (param i64) (param i32) (result i32) (i32.const 8))
  (func (export "fd_allocate") (param i32) (param i64) (param i64) (result i32) (i32.const 8))
  (func (export "fd_datasync") (param i32) (result i32) (i32.const 8))
  (func (export "fd_fdstat_set_rights") (param i32) (param i64) (param i64) (result i32) (i32.const 8))
  (func (export "fd_filestat_get") (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "fd_filestat_set_size") (param i32) (param i64) (result i32) (i32.const 8))
  (func (export "fd_filestat_set_times") (param i32) (param i64) (param i64) (param i32) (result i32) (i32.const 8))
  (func (export "fd_pread") (param i32) (param i32) (param i32) (param i64) (param i32) (result i32) (i32.const 8))
  (func (export "fd_prestat_get") (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "fd_prestat_dir_name") (param i32) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "fd_pwrite") (param i32) (param i32) (param i32) (param i64) (param i32) (result i32) (i32.const 8))
  (func (export "fd_readdir") (param i32) (param i32) (param i32) (param i64) (param i32) (result i32) (i32.const 8))
  (func (export "fd_renumber") (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "fd_seek") (param i32) (param i64) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "fd_sync") (param i32) (result i32) (i32.const 8))
  (func (export "fd_tell") (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "path_create_directory") (param i32) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "path_filestat_get") (param i32) (param i32) (param i32) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "path_filestat_set_times") (param i32) (param i32) (param i32) (param i32) (param i64) (param i64) (param i32) (result i32) (i32.const 8))
  (func (export "path_link") (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "path_open") (param i32) (param i32) (param i32) (param i32) (param i32) (param i64) (param i64) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "path_readlink") (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "path_remove_directory") (param i32) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "path_rename") (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "path_symlink") (param i32) (param i32) (param i32) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "path_unlink_file") (param i32) (param i32) (param i32) (result i32) (i32.const 8))
  (func (export "proc_raise") (param i32) (result i32) (i32.const 52))
  (func (export "sock_accept") (param i32) (param i32) (param i32) (result i32) (i32.const 52))
  (func (export "sock_recv") (param i32) (param i32) (param i32) (param i32) (param i32) (param i32) (result i32) (i32.const 52))
  (func (export "sock_send") (param i32) (param i32) (param i32) (param i32) (param i32) (result i32) (i32.const 52))
  (func (export "sock_shutdown") (param i32) (param i32) (result i32) (i32.const 52))
)
