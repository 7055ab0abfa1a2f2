//! Just enough x86_64 decoding to tell, for a relocated 32-bit field in
//! code, whether the instruction uses the symbol's address or accesses the
//! memory at it.
//!
//! The decision looks only at the bytes before the field: a RIP-relative
//! operand is `opcode, ModRM (mod=00, rm=101), disp32`, an absolute one is
//! `opcode, ModRM (mod=00, rm=100), SIB (base=101), disp32`. A field is a
//! memory access when such an operand belongs to an opcode known to read
//! or write its memory operand. `lea`, immediates (`mov $sym, %reg`), and
//! everything not recognised count as a use of the address: the answer
//! errs towards "address taken".

use super::Use;
use object::elf;

/// One-byte opcodes whose ModRM memory operand is read or written.
fn one_byte_memory_op(op: u8) -> bool {
    matches!(op,
        0x00..=0x03 | 0x08..=0x0b | 0x10..=0x13 | 0x18..=0x1b   // add or adc sbb
        | 0x20..=0x23 | 0x28..=0x2b | 0x30..=0x33 | 0x38..=0x3b // and sub xor cmp
        | 0x63 | 0x69 | 0x6b                                     // movsxd imul
        | 0x80 | 0x81 | 0x83                                     // group 1
        | 0x84..=0x8b                                            // test xchg mov
        | 0x8f                                                   // pop m
        | 0xc0 | 0xc1 | 0xc6 | 0xc7 | 0xd0..=0xd3                // shifts, mov imm
        | 0xf6 | 0xf7 | 0xfe | 0xff) // group 3, inc dec call jmp push
}

/// Two-byte opcodes (after 0x0f) whose ModRM memory operand is read or written.
fn two_byte_memory_op(op: u8) -> bool {
    matches!(op,
        0x0d | 0x18                      // prefetch
        | 0x40..=0x4f                    // cmovcc
        | 0x90..=0x9f                    // setcc
        | 0xa3 | 0xab | 0xaf | 0xb3 | 0xbb | 0xba // bt bts imul btr btc
        | 0xb0 | 0xb1 | 0xc0 | 0xc1 | 0xc7       // cmpxchg xadd cmpxchg8b
        | 0xb6 | 0xb7 | 0xbe | 0xbf | 0xbc | 0xbd) // movzx movsx bsf bsr
}

/// Is the opcode ending at `code[end - 1]` one that accesses memory?
fn memory_op(code: &[u8], end: usize) -> bool {
    let Some(&op) = end.checked_sub(1).and_then(|i| code.get(i)) else {
        return false;
    };
    if end >= 2 && code[end - 2] == 0x0f && two_byte_memory_op(op) {
        return true;
    }
    op != 0x8d && one_byte_memory_op(op)
}

/// How the instruction holding the relocated field at `offset` of `code`
/// (a relocation of type `r_type`) uses its target.
pub(super) fn classify(code: &[u8], offset: u64, r_type: u32) -> Use {
    let Ok(o) = usize::try_from(offset) else {
        return Use::Address;
    };
    if o > code.len() {
        return Use::Address;
    }
    match r_type {
        elf::R_X86_64_PC32
        | elf::R_X86_64_GOTPCREL
        | elf::R_X86_64_GOTPCRELX
        | elf::R_X86_64_REX_GOTPCRELX => {
            // opcode, ModRM(00 reg 101), disp32
            if o >= 2 && code[o - 1] & 0xc7 == 0x05 && memory_op(code, o - 1) {
                return Use::Memory;
            }
            Use::Address
        }
        elf::R_X86_64_32 | elf::R_X86_64_32S => {
            // opcode, ModRM(00 reg 100), SIB(base 101), disp32
            if o >= 3
                && code[o - 2] & 0xc7 == 0x04
                && code[o - 1] & 0x07 == 0x05
                && memory_op(code, o - 2)
            {
                return Use::Memory;
            }
            Use::Address
        }
        _ => Use::Address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PC32: u32 = elf::R_X86_64_PC32;
    const ABS32S: u32 = elf::R_X86_64_32S;

    #[test]
    fn rip_relative_loads_and_stores_are_memory() {
        // mov 0x0(%rip),%eax: 8b 05 <disp32>
        assert_eq!(classify(&[0x8b, 0x05, 0, 0, 0, 0], 2, PC32), Use::Memory);
        // addq $1, 0x0(%rip): 48 83 05 <disp32> 01
        assert_eq!(
            classify(&[0x48, 0x83, 0x05, 0, 0, 0, 0, 1], 3, PC32),
            Use::Memory
        );
        // movzbl 0x0(%rip),%eax: 0f b6 05 <disp32>
        assert_eq!(
            classify(&[0x0f, 0xb6, 0x05, 0, 0, 0, 0], 3, PC32),
            Use::Memory
        );
        // lock incl 0x0(%rip): f0 ff 05 <disp32>
        assert_eq!(
            classify(&[0xf0, 0xff, 0x05, 0, 0, 0, 0], 3, PC32),
            Use::Memory
        );
    }

    #[test]
    fn lea_and_immediates_take_the_address() {
        // lea 0x0(%rip),%rdi: 48 8d 3d <disp32>
        assert_eq!(
            classify(&[0x48, 0x8d, 0x3d, 0, 0, 0, 0], 3, PC32),
            Use::Address
        );
        // mov $sym,%rdi: 48 c7 c7 <imm32>
        assert_eq!(
            classify(&[0x48, 0xc7, 0xc7, 0, 0, 0, 0], 3, ABS32S),
            Use::Address
        );
        // mov $sym,%edi: bf <imm32>
        assert_eq!(
            classify(&[0xbf, 0, 0, 0, 0], 1, elf::R_X86_64_32),
            Use::Address
        );
        // 64-bit absolute in code (movabs)
        assert_eq!(
            classify(&[0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0], 2, elf::R_X86_64_64),
            Use::Address
        );
    }

    #[test]
    fn indexed_absolute_access_is_memory() {
        // mov 0x0(,%rax,8),%rdx: 48 8b 14 c5 <disp32>
        assert_eq!(
            classify(&[0x48, 0x8b, 0x14, 0xc5, 0, 0, 0, 0], 4, ABS32S),
            Use::Memory
        );
        // lea 0x0(,%rax,8),%rdx: 48 8d 14 c5 <disp32>
        assert_eq!(
            classify(&[0x48, 0x8d, 0x14, 0xc5, 0, 0, 0, 0], 4, ABS32S),
            Use::Address
        );
    }

    #[test]
    fn out_of_range_offsets_are_addresses() {
        assert_eq!(classify(&[0x8b], 0, PC32), Use::Address);
        assert_eq!(classify(&[0x8b, 0x05], 1000, PC32), Use::Address);
        assert_eq!(classify(&[], u64::MAX, PC32), Use::Address);
    }
}
