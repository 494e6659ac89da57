;; cpu: compute-bound. One work unit is four xorshift64 rounds folded into an FNV-1a digest.
;; Params: rate (work units wanted per virtual second, default 1,000,000 = one virtual core).
(module
  (memory (export "memory") 1)
  (global $rate (export "param_rate") (mut f64) (f64.const 1000000))
  (global $x (export "x") (mut i64) (i64.const 0x2545F4914F6CDD1D))
  (global $h (export "h") (mut i64) (i64.const 0xcbf29ce484222325))
  (global $done (export "done") (mut i64) (i64.const 0))

  (func $want (param $rate f64) (param $tick_ms i32) (result i32)
    (local $w f64)
    (local.set $w (f64.div (f64.mul (local.get $rate) (f64.convert_i32_s (local.get $tick_ms))) (f64.const 1000)))
    (if (f64.lt (local.get $w) (f64.const 0)) (then (return (i32.const 0))))
    (if (f64.gt (local.get $w) (f64.const 1000000000)) (then (return (i32.const 1000000000))))
    (i32.trunc_f64_s (local.get $w)))

  (func (export "demand") (param $tick_ms i32) (result i32)
    (call $want (global.get $rate) (local.get $tick_ms)))

  (func (export "run") (param $budget i32) (result i32)
    (local $i i32) (local $x i64) (local $h i64) (local $r i32)
    (local.set $x (global.get $x))
    (local.set $h (global.get $h))
    (block $out
      (loop $next
        (br_if $out (i32.ge_s (local.get $i) (local.get $budget)))
        (local.set $r (i32.const 4))
        (loop $round
          (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
          (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
          (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
          (local.set $r (i32.sub (local.get $r) (i32.const 1)))
          (br_if $round (local.get $r)))
        (local.set $h (i64.mul (i64.xor (local.get $h) (local.get $x)) (i64.const 0x100000001b3)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (global.set $x (local.get $x))
    (global.set $h (local.get $h))
    (global.set $done (i64.add (global.get $done) (i64.extend_i32_s (local.get $i))))
    (local.get $i))

  (func (export "digest") (result i64)
    (i64.xor (global.get $h) (i64.mul (global.get $done) (i64.const 0x9E3779B97F4A7C15)))))
