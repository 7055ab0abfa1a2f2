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

/// What the decoder found out about a relocated field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub usage: Use,
    /// Bytes of the instruction after the field (an immediate operand),
    /// when the instruction was recognised.
    pub trailing: Option<u8>,
}

const ADDRESS: Field = Field {
    usage: Use::Address,
    trailing: None,
};

/// Is there an operand-size prefix (0x66) before the opcode at `op_at`,
/// possibly followed by a REX prefix?
fn operand_size_16(code: &[u8], op_at: usize) -> bool {
    let before = |n: usize| op_at.checked_sub(n).and_then(|i| code.get(i)).copied();
    match before(1) {
        Some(0x66) => true,
        Some(0x40..=0x4f) => before(2) == Some(0x66),
        _ => false,
    }
}

/// The immediate's size of a one-byte memory opcode `op` (ModRM `modrm`).
fn immediate_size(code: &[u8], op_at: usize, op: u8, modrm: u8) -> u8 {
    let reg = (modrm >> 3) & 7;
    let imm_z = if operand_size_16(code, op_at) { 2 } else { 4 };
    match op {
        0x80 | 0x83 | 0xc0 | 0xc1 | 0xc6 | 0x6b => 1,
        0x81 | 0xc7 | 0x69 => imm_z,
        0xf6 if reg <= 1 => 1,
        0xf7 if reg <= 1 => imm_z,
        _ => 0,
    }
}

/// The field's use, given that the opcode ends right before `modrm_at`.
fn memory_operand(code: &[u8], modrm_at: usize) -> Field {
    let Some(op_at) = modrm_at.checked_sub(1) else {
        return ADDRESS;
    };
    let (Some(&op), Some(&modrm)) = (code.get(op_at), code.get(modrm_at)) else {
        return ADDRESS;
    };
    if op_at >= 1 && code[op_at - 1] == 0x0f && two_byte_memory_op(op) {
        let trailing = if op == 0xba { 1 } else { 0 };
        return Field {
            usage: Use::Memory,
            trailing: Some(trailing),
        };
    }
    if op == 0x8d || !one_byte_memory_op(op) {
        return ADDRESS;
    }
    Field {
        usage: Use::Memory,
        trailing: Some(immediate_size(code, op_at, op, modrm)),
    }
}

/// How the instruction holding the relocated field at `offset` of `code`
/// (a relocation of type `r_type`) uses its target.
pub(crate) fn classify(code: &[u8], offset: u64, r_type: u32) -> Field {
    let Ok(o) = usize::try_from(offset) else {
        return ADDRESS;
    };
    if o > code.len() {
        return ADDRESS;
    }
    match r_type {
        elf::R_X86_64_PC32
        | elf::R_X86_64_GOTPCREL
        | elf::R_X86_64_GOTPCRELX
        | elf::R_X86_64_REX_GOTPCRELX => {
            // opcode, ModRM(00 reg 101), disp32
            if o >= 2 && code[o - 1] & 0xc7 == 0x05 {
                return memory_operand(code, o - 1);
            }
            ADDRESS
        }
        elf::R_X86_64_32 | elf::R_X86_64_32S => {
            // opcode, ModRM(00 reg 100), SIB(base 101), disp32
            if o >= 3 && code[o - 2] & 0xc7 == 0x04 && code[o - 1] & 0x07 == 0x05 {
                return memory_operand(code, o - 2);
            }
            ADDRESS
        }
        _ => ADDRESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PC32: u32 = elf::R_X86_64_PC32;
    const ABS32S: u32 = elf::R_X86_64_32S;

    fn usage(code: &[u8], offset: u64, r_type: u32) -> Use {
        classify(code, offset, r_type).usage
    }

    #[test]
    fn immediates_after_the_field_are_sized() {
        // addq $1, 0x0(%rip): 48 83 05 <disp32> 01
        let f = classify(&[0x48, 0x83, 0x05, 0, 0, 0, 0, 1], 3, PC32);
        assert_eq!(f.trailing, Some(1));
        // movq $imm32, 0x0(%rip): 48 c7 05 <disp32> <imm32>
        let f = classify(&[0x48, 0xc7, 0x05, 0, 0, 0, 0, 0, 0, 0, 0], 3, PC32);
        assert_eq!(f.trailing, Some(4));
        // movw $imm16, 0x0(%rip): 66 c7 05 <disp32> <imm16>
        let f = classify(&[0x66, 0xc7, 0x05, 0, 0, 0, 0, 0, 0], 3, PC32);
        assert_eq!(f.trailing, Some(2));
        // testb $imm8, 0x0(%rip): f6 05 <disp32> <imm8>
        let f = classify(&[0xf6, 0x05, 0, 0, 0, 0, 1], 2, PC32);
        assert_eq!(f.trailing, Some(1));
        // notl 0x0(%rip): f7 15 <disp32>
        let f = classify(&[0xf7, 0x15, 0, 0, 0, 0], 2, PC32);
        assert_eq!(
            f,
            Field {
                usage: Use::Memory,
                trailing: Some(0)
            }
        );
        // btl $3, 0x0(%rip): 0f ba 25 <disp32> 03
        let f = classify(&[0x0f, 0xba, 0x25, 0, 0, 0, 0, 3], 3, PC32);
        assert_eq!(f.trailing, Some(1));
        // lea: unknown trailing bytes are not claimed
        assert_eq!(
            classify(&[0x48, 0x8d, 0x3d, 0, 0, 0, 0], 3, PC32).trailing,
            None
        );
    }

    #[test]
    fn rip_relative_loads_and_stores_are_memory() {
        // mov 0x0(%rip),%eax: 8b 05 <disp32>
        assert_eq!(usage(&[0x8b, 0x05, 0, 0, 0, 0], 2, PC32), Use::Memory);
        // addq $1, 0x0(%rip): 48 83 05 <disp32> 01
        assert_eq!(
            usage(&[0x48, 0x83, 0x05, 0, 0, 0, 0, 1], 3, PC32),
            Use::Memory
        );
        // movzbl 0x0(%rip),%eax: 0f b6 05 <disp32>
        assert_eq!(usage(&[0x0f, 0xb6, 0x05, 0, 0, 0, 0], 3, PC32), Use::Memory);
        // lock incl 0x0(%rip): f0 ff 05 <disp32>
        assert_eq!(usage(&[0xf0, 0xff, 0x05, 0, 0, 0, 0], 3, PC32), Use::Memory);
    }

    #[test]
    fn lea_and_immediates_take_the_address() {
        // lea 0x0(%rip),%rdi: 48 8d 3d <disp32>
        assert_eq!(
            usage(&[0x48, 0x8d, 0x3d, 0, 0, 0, 0], 3, PC32),
            Use::Address
        );
        // mov $sym,%rdi: 48 c7 c7 <imm32>
        assert_eq!(
            usage(&[0x48, 0xc7, 0xc7, 0, 0, 0, 0], 3, ABS32S),
            Use::Address
        );
        // mov $sym,%edi: bf <imm32>
        assert_eq!(
            usage(&[0xbf, 0, 0, 0, 0], 1, elf::R_X86_64_32),
            Use::Address
        );
        // 64-bit absolute in code (movabs)
        assert_eq!(
            usage(&[0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0], 2, elf::R_X86_64_64),
            Use::Address
        );
    }

    #[test]
    fn indexed_absolute_access_is_memory() {
        // mov 0x0(,%rax,8),%rdx: 48 8b 14 c5 <disp32>
        assert_eq!(
            usage(&[0x48, 0x8b, 0x14, 0xc5, 0, 0, 0, 0], 4, ABS32S),
            Use::Memory
        );
        // lea 0x0(,%rax,8),%rdx: 48 8d 14 c5 <disp32>
        assert_eq!(
            usage(&[0x48, 0x8d, 0x14, 0xc5, 0, 0, 0, 0], 4, ABS32S),
            Use::Address
        );
    }

    #[test]
    fn out_of_range_offsets_are_addresses() {
        assert_eq!(usage(&[0x8b], 0, PC32), Use::Address);
        assert_eq!(usage(&[0x8b, 0x05], 1000, PC32), Use::Address);
        assert_eq!(usage(&[], u64::MAX, PC32), Use::Address);
    }
}
