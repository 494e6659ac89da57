;; trace: follows a CPU-utilisation series (GuestSpec.series, percent per step, e.g. 288
;; five-minute values of a day). Each tick it wants series[step] % of `peak` work units per
;; virtual second, where step = ticks / stepTicks; the work itself is the cpu guest's.
;; Params: peak (units per virtual second at 100 %, default 1,000,000), stepTicks (default 1).
(module
  (import "env" "series" (func $series (param i32) (result f64)))
  (memory (export "memory") 1)
  (global $peak (export "param_peak") (mut f64) (f64.const 1000000))
  (global $step_ticks (export "param_stepTicks") (mut i32) (i32.const 1))
  (global $ticks (export "ticks") (mut i32) (i32.const 0))
  (global $x (export "x") (mut i64) (i64.const 0x3C6EF372FE94F82B))
  (global $h (export "h") (mut i64) (i64.const 0xcbf29ce484222325))
  (global $done (export "done") (mut i64) (i64.const 0))

  (func (export "init")
    (if (i32.lt_s (global.get $step_ticks) (i32.const 1)) (then (global.set $step_ticks (i32.const 1)))))

  (func (export "demand") (param $tick_ms i32) (result i32)
    (local $u f64) (local $w f64)
    (local.set $u (call $series (i32.div_u (global.get $ticks) (global.get $step_ticks))))
    (if (f64.lt (local.get $u) (f64.const 0)) (then (return (i32.const 0))))
    (local.set $w (f64.div (f64.mul (f64.mul (local.get $u) (global.get $peak)) (f64.convert_i32_s (local.get $tick_ms)))
                           (f64.const 100000)))
    (if (f64.gt (local.get $w) (f64.const 1000000000)) (then (return (i32.const 1000000000))))
    (i32.trunc_f64_s (local.get $w)))

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
    (global.set $ticks (i32.add (global.get $ticks) (i32.const 1)))
    (local.get $i))

  (func (export "digest") (result i64)
    (i64.xor (global.get $h) (i64.mul (global.get $done) (i64.const 0x9E3779B97F4A7C15)))))
