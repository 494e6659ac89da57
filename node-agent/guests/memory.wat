;; memory: dirties a working set of pages. One work unit reads, folds and rewrites 64 bytes at a
;; pseudo-random place in the working set (pages 1..wsPages; page 0 is left alone).
;; It marks each page it writes in a dirty map (one byte per page at address 0, exported as
;; `dirty_map`), so the kernel finds its dirty pages without comparing all of memory.
;; Params: wsPages (default 64, clamped to the memory the VM has), rate (units per virtual second,
;; default 200,000), residentPages (default 0): init writes a word into each page after the working
;; set up to this many pages, so they are resident (imaged and copied) but never written again.
(module
  (memory (export "memory") 1)
  (global $ws_param (export "param_wsPages") (mut i32) (i32.const 64))
  (global $rate (export "param_rate") (mut f64) (f64.const 200000))
  (global $resident (export "param_residentPages") (mut i32) (i32.const 0))
  (global $ws (export "ws") (mut i32) (i32.const 1))
  (global $map (export "dirty_map") i32 (i32.const 0))
  (global $x (export "x") (mut i64) (i64.const 0x4F1BBCDCBFA53E0B))
  (global $h (export "h") (mut i64) (i64.const 0xcbf29ce484222325))
  (global $done (export "done") (mut i64) (i64.const 0))

  (func (export "init")
    (local $ws i32) (local $p i32)
    (local.set $ws (global.get $ws_param))
    (if (i32.lt_s (local.get $ws) (i32.const 1)) (then (local.set $ws (i32.const 1))))
    ;; the working set needs ws pages after page 0; grow if the VM was given less
    (if (i32.gt_u (i32.add (local.get $ws) (i32.const 1)) (memory.size))
      (then (if (i32.lt_s (memory.grow (i32.sub (i32.add (local.get $ws) (i32.const 1)) (memory.size))) (i32.const 0))
        (then (local.set $ws (i32.sub (memory.size) (i32.const 1)))))))
    (global.set $ws (local.get $ws))
    (local.set $p (i32.add (local.get $ws) (i32.const 1)))
    (block $filled
      (loop $fill
        (br_if $filled (i32.ge_u (local.get $p) (global.get $resident)))
        (br_if $filled (i32.ge_u (local.get $p) (memory.size)))
        (i64.store (i32.mul (local.get $p) (i32.const 65536)) (i64.extend_i32_u (i32.add (local.get $p) (i32.const 1))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $fill))))

  (func (export "demand") (param $tick_ms i32) (result i32)
    (local $w f64)
    (local.set $w (f64.div (f64.mul (global.get $rate) (f64.convert_i32_s (local.get $tick_ms))) (f64.const 1000)))
    (if (f64.lt (local.get $w) (f64.const 0)) (then (return (i32.const 0))))
    (if (f64.gt (local.get $w) (f64.const 1000000000)) (then (return (i32.const 1000000000))))
    (i32.trunc_f64_s (local.get $w)))

  (func (export "run") (param $budget i32) (result i32)
    (local $i i32) (local $x i64) (local $h i64) (local $addr i32) (local $k i32) (local $v i64) (local $page i32)
    (local.set $x (global.get $x))
    (local.set $h (global.get $h))
    (block $out
      (loop $next
        (br_if $out (i32.ge_s (local.get $i) (local.get $budget)))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
        ;; page 1 + (x mod ws), 64-byte line from the high bits
        (local.set $page
          (i32.add (i32.const 1) (i32.wrap_i64 (i64.rem_u (local.get $x) (i64.extend_i32_u (global.get $ws))))))
        (local.set $addr
          (i32.add (i32.mul (local.get $page) (i32.const 65536))
            (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 40))) (i32.const 0xffc0))))
        (i32.store8 (i32.add (global.get $map) (local.get $page)) (i32.const 1))
        (local.set $k (i32.const 0))
        (loop $word
          (local.set $v (i64.load (i32.add (local.get $addr) (local.get $k))))
          (local.set $h (i64.mul (i64.xor (local.get $h) (local.get $v)) (i64.const 0x100000001b3)))
          (i64.store (i32.add (local.get $addr) (local.get $k)) (i64.add (local.get $v) (local.get $x)))
          (local.set $k (i32.add (local.get $k) (i32.const 8)))
          (br_if $word (i32.lt_u (local.get $k) (i32.const 64))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (global.set $x (local.get $x))
    (global.set $h (local.get $h))
    (global.set $done (i64.add (global.get $done) (i64.extend_i32_s (local.get $i))))
    (local.get $i))

  (func (export "digest") (result i64)
    (i64.xor (global.get $h) (i64.mul (global.get $done) (i64.const 0x9E3779B97F4A7C15)))))
