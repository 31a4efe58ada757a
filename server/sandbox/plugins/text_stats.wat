;; text_stats: counts the words, characters and lines of a text exactly, which language
;; models do badly. A component of the codexcontinue:plugin world (../wit/plugin.wit),
;; written by hand in the WebAssembly text format so that it builds with nothing but the
;; server itself (which compiles it when it is registered).
;;
;; Tool `count`, arguments {"text": "..."}: answers {"characters": C, "words": W, "lines": L}
;; where characters are Unicode scalar values, words are runs of non-blank characters
;; (blank: space, tab, line breaks) and lines are line breaks plus one (0 for "").
(component
  (core module $m
    (memory (export "memory") 1)
    ;; Everything below 4096 is static; the allocator hands out memory above it.
    (global $heap (mut i32) (i32.const 4096))

    (data (i32.const 1024) "{\"name\":\"text_stats\",\"version\":\"1.0.0\",\"description\":\"Counts words, characters and lines exactly.\",\"tools\":[{\"name\":\"count\",\"description\":\"Counts the words, characters (Unicode scalar values) and lines of a text exactly.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\",\"description\":\"The text to count.\"}},\"required\":[\"text\"]}}],\"requested_capabilities\":[]}")
    ;; its length, in bytes
    (global $manifest_len i32 (i32.const 378))
    (data (i32.const 2048) "count")
    (data (i32.const 2056) "\"text\"")
    (data (i32.const 2064) "unknown tool; this plugin has: count")
    (data (i32.const 2112) "arguments need a string \"text\"")
    (data (i32.const 2160) "{\"characters\":")
    (data (i32.const 2176) ",\"words\":")
    (data (i32.const 2192) ",\"lines\":")

    ;; The canonical ABI's allocator: a bump allocator that grows memory as needed.
    (func $realloc (export "cabi_realloc")
      (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $ptr i32) (local $end i32)
      (local.set $ptr
        (i32.and
          (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $ptr) (local.get $size)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
        (then
          (if (i32.eq
                (memory.grow
                  (i32.add
                    (i32.shr_u
                      (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
                      (i32.const 16))
                    (i32.const 1)))
                (i32.const -1))
            (then unreachable))))
      (global.set $heap (local.get $end))
      (if (local.get $old)
        (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
      (local.get $ptr))

    (func (export "describe") (result i32)
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (global.get $manifest_len))
      (i32.const 0))

    ;; result<string, string> at 16: the case at 16, the string's pointer and length at
    ;; 20 and 24.
    (func $answer (param $case i32) (param $ptr i32) (param $len i32) (result i32)
      (i32.store8 (i32.const 16) (local.get $case))
      (i32.store (i32.const 20) (local.get $ptr))
      (i32.store (i32.const 24) (local.get $len))
      (i32.const 16))

    ;; Whether `len` bytes at `a` and at `b` are the same.
    (func $same (param $a i32) (param $b i32) (param $len i32) (result i32)
      (local $i i32)
      (block $differ
        (loop $next
          (if (i32.ge_u (local.get $i) (local.get $len)) (then (return (i32.const 1))))
          (br_if $differ
            (i32.ne
              (i32.load8_u (i32.add (local.get $a) (local.get $i)))
              (i32.load8_u (i32.add (local.get $b) (local.get $i)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (i32.const 0))

    ;; Copies `len` bytes from `from` to `to`; where the copy ends.
    (func $put (param $to i32) (param $from i32) (param $len i32) (result i32)
      (memory.copy (local.get $to) (local.get $from) (local.get $len))
      (i32.add (local.get $to) (local.get $len)))

    ;; Writes `n` in decimal at `to`; where it ends.
    (func $number (param $to i32) (param $n i32) (result i32)
      (local $digits i32) (local $rest i32) (local $end i32)
      (local.set $digits (i32.const 1))
      (local.set $rest (local.get $n))
      (block $counted
        (loop $more
          (br_if $counted (i32.lt_u (local.get $rest) (i32.const 10)))
          (local.set $rest (i32.div_u (local.get $rest) (i32.const 10)))
          (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
          (br $more)))
      (local.set $end (i32.add (local.get $to) (local.get $digits)))
      (local.set $rest (local.get $n))
      (loop $write
        (local.set $digits (i32.sub (local.get $digits) (i32.const 1)))
        (i32.store8
          (i32.add (local.get $to) (local.get $digits))
          (i32.add (i32.const 48) (i32.rem_u (local.get $rest) (i32.const 10))))
        (local.set $rest (i32.div_u (local.get $rest) (i32.const 10)))
        (br_if $write (local.get $digits)))
      (local.get $end))

    (func (export "invoke")
      (param $tool i32) (param $tool_len i32) (param $args i32) (param $args_len i32)
      (result i32)
      (local $i i32) (local $end i32) (local $b i32) (local $blank i32) (local $counts i32)
      (local $in_word i32) (local $chars i32) (local $words i32) (local $breaks i32)
      (local $out i32) (local $at i32)
      (if (i32.or
            (i32.ne (local.get $tool_len) (i32.const 5))
            (i32.eqz (call $same (local.get $tool) (i32.const 2048) (i32.const 5))))
        (then (return (call $answer (i32.const 1) (i32.const 2064) (i32.const 36)))))
      (local.set $end (i32.add (local.get $args) (local.get $args_len)))
      ;; Find the key "text".
      (local.set $i (local.get $args))
      (block $found
        (loop $look
          (if (i32.gt_u (i32.add (local.get $i) (i32.const 6)) (local.get $end))
            (then (return (call $answer (i32.const 1) (i32.const 2112) (i32.const 30)))))
          (br_if $found (call $same (local.get $i) (i32.const 2056) (i32.const 6)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $look)))
      (local.set $i (i32.add (local.get $i) (i32.const 6)))
      ;; Skip blanks and the colon, then expect the opening quote.
      (block $value
        (loop $skip
          (br_if $value (i32.ge_u (local.get $i) (local.get $end)))
          (local.set $b (i32.load8_u (local.get $i)))
          (br_if $value
            (i32.eqz
              (i32.or
                (i32.or (i32.eq (local.get $b) (i32.const 32)) (i32.eq (local.get $b) (i32.const 58)))
                (i32.or
                  (i32.or (i32.eq (local.get $b) (i32.const 9)) (i32.eq (local.get $b) (i32.const 10)))
                  (i32.eq (local.get $b) (i32.const 13))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $skip)))
      (if (i32.or
            (i32.ge_u (local.get $i) (local.get $end))
            (i32.ne (i32.load8_u (local.get $i)) (i32.const 34)))
        (then (return (call $answer (i32.const 1) (i32.const 2112) (i32.const 30)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      ;; Count up to the closing quote.
      (block $done
        (loop $char
          (if (i32.ge_u (local.get $i) (local.get $end))
            (then (return (call $answer (i32.const 1) (i32.const 2112) (i32.const 30)))))
          (local.set $b (i32.load8_u (local.get $i)))
          (br_if $done (i32.eq (local.get $b) (i32.const 34)))
          (local.set $blank (i32.const 0))
          (local.set $counts (i32.const 1))
          (if (i32.eq (local.get $b) (i32.const 92))
            (then
              ;; An escape: \n, \t, \r are blanks (\n a line break); \uXXXX is one
              ;; character, but the low half of a surrogate pair adds none.
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (local.set $b (i32.load8_u (local.get $i)))
              (if (i32.eq (local.get $b) (i32.const 110))
                (then
                  (local.set $blank (i32.const 1))
                  (local.set $breaks (i32.add (local.get $breaks) (i32.const 1)))))
              (if (i32.or (i32.eq (local.get $b) (i32.const 116)) (i32.eq (local.get $b) (i32.const 114)))
                (then (local.set $blank (i32.const 1))))
              (if (i32.eq (local.get $b) (i32.const 117))
                (then
                  (if (i32.and
                        (i32.eq (i32.or (i32.load8_u (i32.add (local.get $i) (i32.const 1))) (i32.const 32)) (i32.const 100))
                        (i32.ge_u (i32.or (i32.load8_u (i32.add (local.get $i) (i32.const 2))) (i32.const 32)) (i32.const 99)))
                    (then (local.set $counts (i32.const 0))))
                  (local.set $i (i32.add (local.get $i) (i32.const 4))))))
            (else
              ;; UTF-8: continuation bytes belong to the character before them.
              (if (i32.eq (i32.and (local.get $b) (i32.const 192)) (i32.const 128))
                (then (local.set $counts (i32.const 0))))
              (local.set $blank (i32.eq (local.get $b) (i32.const 32)))))
          (if (local.get $counts)
            (then
              (local.set $chars (i32.add (local.get $chars) (i32.const 1)))
              (if (local.get $blank)
                (then (local.set $in_word (i32.const 0)))
                (else
                  (if (i32.eqz (local.get $in_word))
                    (then
                      (local.set $in_word (i32.const 1))
                      (local.set $words (i32.add (local.get $words) (i32.const 1)))))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $char)))
      (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 64)))
      (local.set $at (call $put (local.get $out) (i32.const 2160) (i32.const 14)))
      (local.set $at (call $number (local.get $at) (local.get $chars)))
      (local.set $at (call $put (local.get $at) (i32.const 2176) (i32.const 9)))
      (local.set $at (call $number (local.get $at) (local.get $words)))
      (local.set $at (call $put (local.get $at) (i32.const 2192) (i32.const 9)))
      (local.set $at
        (call $number (local.get $at)
          (select (i32.add (local.get $breaks) (i32.const 1)) (i32.const 0) (local.get $chars))))
      (i32.store8 (local.get $at) (i32.const 125))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (call $answer (i32.const 0) (local.get $out) (i32.sub (local.get $at) (local.get $out))))
  )
  (core instance $i (instantiate $m))
  (func (export "describe") (result string)
    (canon lift (core func $i "describe") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (func (export "invoke") (param "tool" string) (param "arguments" string)
    (result (result string (error string)))
    (canon lift (core func $i "invoke") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
)
