;; idle: wants no work; counts the ticks it was scheduled for.
(module
  (memory (export "memory") 1)
  (global $ticks (export "ticks") (mut i64) (i64.const 0))
  (func (export "demand") (param $tick_ms i32) (result i32) (i32.const 0))
  (func (export "run") (param $budget i32) (result i32)
    (global.set $ticks (i64.add (global.get $ticks) (i64.const 1)))
    (i32.const 0))
  (func (export "digest") (result i64)
    (i64.mul (global.get $ticks) (i64.const 0x100000001b3))))
