;; io: reads and writes its virtual disk. One work unit is 512 bytes of I/O; an operation moves
;; opBytes (a multiple of 512) between a buffer at page 1 and the disk: half the operations read a
;; random aligned place and fold what they find into the digest, half append a pattern derived
;; from the guest's state at a cursor that wraps around the disk, like a log.
;; Only page 1 (the buffer) is ever written; the guest marks it in its dirty map at address 0.
;; Params: rate (units per virtual second, default 50,000), opBytes (default 4096, at most 65536),
;; diskMiB (the disk's size, default 16; the kernel sizes the disk from the same param).
(module
  (import "env" "disk_read" (func $disk_read (param i32 i32 i32) (result i32)))
  (import "env" "disk_write" (func $disk_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $rate (export "param_rate") (mut f64) (f64.const 50000))
  (global $op_bytes (export "param_opBytes") (mut i32) (i32.const 4096))
  (global $disk_mib (export "param_diskMiB") (mut i32) (i32.const 16))
  (global $x (export "x") (mut i64) (i64.const 0x61C8864680B583EB))
  (global $h (export "h") (mut i64) (i64.const 0xcbf29ce484222325))
  (global $done (export "done") (mut i64) (i64.const 0))
  (global $errors (export "errors") (mut i32) (i32.const 0))
  (global $cursor (export "cursor") (mut i64) (i64.const 0))
  (global $map (export "dirty_map") i32 (i32.const 0))

  (func (export "init")
    (local $b i32)
    (local.set $b (i32.and (global.get $op_bytes) (i32.const -512)))
    (if (i32.lt_s (local.get $b) (i32.const 512)) (then (local.set $b (i32.const 512))))
    (if (i32.gt_s (local.get $b) (i32.const 65536)) (then (local.set $b (i32.const 65536))))
    (global.set $op_bytes (local.get $b))
    (if (i32.lt_s (global.get $disk_mib) (i32.const 1)) (then (global.set $disk_mib (i32.const 1))))
    (if (i32.lt_u (memory.size) (i32.const 2)) (then (drop (memory.grow (i32.sub (i32.const 2) (memory.size)))))))

  (func (export "demand") (param $tick_ms i32) (result i32)
    (local $w f64)
    (local.set $w (f64.div (f64.mul (global.get $rate) (f64.convert_i32_s (local.get $tick_ms))) (f64.const 1000)))
    (if (f64.lt (local.get $w) (f64.const 0)) (then (return (i32.const 0))))
    (if (f64.gt (local.get $w) (f64.const 1000000000)) (then (return (i32.const 1000000000))))
    (i32.trunc_f64_s (local.get $w)))

  (func (export "run") (param $budget i32) (result i32)
    (local $used i32) (local $per_op i32) (local $x i64) (local $h i64) (local $slots i64)
    (local $off i32) (local $k i32) (local $n i32)
    (local.set $per_op (i32.shr_u (global.get $op_bytes) (i32.const 9)))
    (local.set $slots (i64.div_u (i64.shl (i64.extend_i32_u (global.get $disk_mib)) (i64.const 20))
                                 (i64.extend_i32_u (global.get $op_bytes))))
    (local.set $x (global.get $x))
    (local.set $h (global.get $h))
    (block $out
      (loop $next
        (br_if $out (i32.gt_s (i32.add (local.get $used) (local.get $per_op)) (local.get $budget)))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
        (local.set $off (i32.wrap_i64 (i64.mul (i64.rem_u (local.get $x) (local.get $slots))
                                               (i64.extend_i32_u (global.get $op_bytes)))))
        (i32.store8 (i32.add (global.get $map) (i32.const 1)) (i32.const 1))
        (if (i64.eqz (i64.and (i64.shr_u (local.get $x) (i64.const 40)) (i64.const 1)))
          (then
            ;; write: fill the buffer with a pattern from x, then write it out
            (local.set $k (i32.const 0))
            (loop $fill
              (i64.store (i32.add (i32.const 65536) (local.get $k))
                (i64.xor (local.get $x) (i64.mul (i64.extend_i32_u (local.get $k)) (i64.const 0x9E3779B97F4A7C15))))
              (local.set $k (i32.add (local.get $k) (i32.const 8)))
              (br_if $fill (i32.lt_u (local.get $k) (global.get $op_bytes))))
            (local.set $n (call $disk_write
              (i32.wrap_i64 (i64.mul (global.get $cursor) (i64.extend_i32_u (global.get $op_bytes))))
              (i32.const 65536) (global.get $op_bytes)))
            (global.set $cursor (i64.rem_u (i64.add (global.get $cursor) (i64.const 1)) (local.get $slots))))
          (else
            (local.set $n (call $disk_read (local.get $off) (i32.const 65536) (global.get $op_bytes)))
            (local.set $k (i32.const 0))
            (loop $fold
              (local.set $h (i64.mul (i64.xor (local.get $h) (i64.load (i32.add (i32.const 65536) (local.get $k))))
                                     (i64.const 0x100000001b3)))
              (local.set $k (i32.add (local.get $k) (i32.const 8)))
              (br_if $fold (i32.lt_u (local.get $k) (global.get $op_bytes))))))
        (if (i32.ne (local.get $n) (global.get $op_bytes))
          (then (global.set $errors (i32.add (global.get $errors) (i32.const 1)))))
        (local.set $used (i32.add (local.get $used) (local.get $per_op)))
        (br $next)))
    (global.set $x (local.get $x))
    (global.set $h (local.get $h))
    (global.set $done (i64.add (global.get $done) (i64.extend_i32_s (local.get $used))))
    (local.get $used))

  (func (export "digest") (result i64)
    (i64.xor
      (i64.xor (global.get $h) (i64.mul (global.get $done) (i64.const 0x9E3779B97F4A7C15)))
      (i64.extend_i32_u (global.get $errors)))))
