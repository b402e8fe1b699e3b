;; The two passes of resample.ts in WebAssembly SIMD: one pixel's channels ride in one f32x4, so
;; a tap is one load, one widening, one multiply-add for all channels, where JavaScript does each
;; channel apart. resample.ts computes the taps, lays out the memory and calls these two.
;; Source: this file. resample.wasm is its assembly (npm run build:wasm, wabt's wat2wasm);
;; test/unit/resample.test.ts checks that the two agree.
(module
  (memory (export "memory") 288)

  ;; Pass 1: `rowCount` source rows from `src` (`stride` bytes apart), each resized horizontally
  ;; to `width` pixels written as f32x4 (16 bytes each, lane 3 unused) from `rows`.
  ;; Output pixel x reads `taps` taps: at (x * taps + k) * 4, `offsets` holds the byte offset of
  ;; the tap's pixel in its row and `weights` its f32 weight. A pixel is read as 4 bytes: with 3
  ;; channels the 4th is the next pixel's, so the source needs one byte of slack after it.
  (func (export "horizontal")
    (param $src i32) (param $stride i32) (param $rowCount i32) (param $width i32)
    (param $offsets i32) (param $weights i32) (param $taps i32) (param $rows i32)
    (local $r i32) (local $rowSrc i32) (local $dst i32) (local $x i32)
    (local $t i32) (local $tEnd i32) (local $acc v128)
    (local.set $dst (local.get $rows))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rowCount)))
        (local.set $rowSrc (i32.add (local.get $src) (i32.mul (local.get $r) (local.get $stride))))
        (local.set $x (i32.const 0))
        (local.set $t (i32.const 0))
        (block $pixelsDone
          (loop $pixel
            (br_if $pixelsDone (i32.ge_u (local.get $x) (local.get $width)))
            (local.set $acc (f32x4.splat (f32.const 0)))
            (local.set $tEnd (i32.add (local.get $t) (i32.shl (local.get $taps) (i32.const 2))))
            (block $tapsDone
              (loop $tap
                (br_if $tapsDone (i32.ge_u (local.get $t) (local.get $tEnd)))
                (local.set $acc
                  (f32x4.add
                    (local.get $acc)
                    (f32x4.mul
                      (f32x4.convert_i32x4_u
                        (i32x4.extend_low_i16x8_u
                          (i16x8.extend_low_i8x16_u
                            (v128.load32_zero
                              (i32.add (local.get $rowSrc) (i32.load (i32.add (local.get $offsets) (local.get $t))))))))
                      (f32x4.splat (f32.load (i32.add (local.get $weights) (local.get $t)))))))
                (local.set $t (i32.add (local.get $t) (i32.const 4)))
                (br $tap)))
            (v128.store (local.get $dst) (local.get $acc))
            (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $pixel)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))
  )

  ;; Pass 2: `height` output rows of `width` pixels, each the weighted sum of `taps` rows of
  ;; pass 1: at (y * taps + k) * 4, `rowAt` holds the byte address of the row and `weights` its
  ;; f32 weight. Each sum is normalised (sum * mul + add, lane by lane: f32x4 at `norm` and
  ;; `norm` + 16) and its lanes 0, 1, 2 stored as f32 at `out` + (y * width + x) * 4 + the byte
  ;; offset of that lane's plane (i32 at `norm` + 32, + 36, + 40).
  (func (export "vertical")
    (param $width i32) (param $height i32) (param $rowAt i32) (param $weights i32)
    (param $taps i32) (param $norm i32) (param $out i32)
    (local $mul v128) (local $add v128) (local $plane0 i32) (local $plane1 i32) (local $plane2 i32)
    (local $y i32) (local $x i32) (local $column i32) (local $t i32) (local $tStart i32)
    (local $tEnd i32) (local $acc v128) (local $d i32)
    (local.set $mul (v128.load (local.get $norm)))
    (local.set $add (v128.load offset=16 (local.get $norm)))
    (local.set $plane0 (i32.load offset=32 (local.get $norm)))
    (local.set $plane1 (i32.load offset=36 (local.get $norm)))
    (local.set $plane2 (i32.load offset=40 (local.get $norm)))
    (local.set $d (local.get $out))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $height)))
        (local.set $tStart (i32.shl (i32.mul (local.get $y) (local.get $taps)) (i32.const 2)))
        (local.set $tEnd (i32.add (local.get $tStart) (i32.shl (local.get $taps) (i32.const 2))))
        (local.set $x (i32.const 0))
        (block $pixelsDone
          (loop $pixel
            (br_if $pixelsDone (i32.ge_u (local.get $x) (local.get $width)))
            (local.set $column (i32.shl (local.get $x) (i32.const 4)))
            (local.set $acc (f32x4.splat (f32.const 0)))
            (local.set $t (local.get $tStart))
            (block $tapsDone
              (loop $tap
                (br_if $tapsDone (i32.ge_u (local.get $t) (local.get $tEnd)))
                (local.set $acc
                  (f32x4.add
                    (local.get $acc)
                    (f32x4.mul
                      (v128.load
                        (i32.add (i32.load (i32.add (local.get $rowAt) (local.get $t))) (local.get $column)))
                      (f32x4.splat (f32.load (i32.add (local.get $weights) (local.get $t)))))))
                (local.set $t (i32.add (local.get $t) (i32.const 4)))
                (br $tap)))
            (local.set $acc (f32x4.add (f32x4.mul (local.get $acc) (local.get $mul)) (local.get $add)))
            (f32.store (i32.add (local.get $d) (local.get $plane0)) (f32x4.extract_lane 0 (local.get $acc)))
            (f32.store (i32.add (local.get $d) (local.get $plane1)) (f32x4.extract_lane 1 (local.get $acc)))
            (f32.store (i32.add (local.get $d) (local.get $plane2)) (f32x4.extract_lane 2 (local.get $acc)))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $pixel)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $row)))
  )
)
