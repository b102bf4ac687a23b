"""The Linux GPIO character device uAPI v2 (<linux/gpio.h>) as ctypes structures.

Only what the box uses: request lines, read and set their values, and the chip's label.
Layouts match the kernel's on 64-bit Linux (arm64, amd64): the __aligned_u64 fields are
8-aligned there, which ctypes' c_uint64 is too. tests/unit/test_hardware_gpio.py checks
the sizes against the numbers in the header.
"""

import ctypes

GPIO_MAX_NAME_SIZE = 32
GPIO_V2_LINES_MAX = 64
GPIO_V2_LINE_NUM_ATTRS_MAX = 10

# enum gpio_v2_line_flag
FLAG_ACTIVE_LOW = 1 << 1
FLAG_INPUT = 1 << 2
FLAG_OUTPUT = 1 << 3
FLAG_BIAS_PULL_UP = 1 << 8
FLAG_BIAS_PULL_DOWN = 1 << 9
FLAG_BIAS_DISABLED = 1 << 10

# enum gpio_v2_line_attr_id
ATTR_ID_FLAGS = 1
ATTR_ID_OUTPUT_VALUES = 2
ATTR_ID_DEBOUNCE = 3


class LineAttributeValue(ctypes.Union):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("debounce_period_us", ctypes.c_uint32),
    ]


class LineAttribute(ctypes.Structure):  # struct gpio_v2_line_attribute
    _anonymous_ = ("u",)
    _fields_ = [("id", ctypes.c_uint32), ("padding", ctypes.c_uint32), ("u", LineAttributeValue)]


class LineConfigAttribute(ctypes.Structure):  # struct gpio_v2_line_config_attribute
    _fields_ = [("attr", LineAttribute), ("mask", ctypes.c_uint64)]


class LineConfig(ctypes.Structure):  # struct gpio_v2_line_config
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("num_attrs", ctypes.c_uint32),
        ("padding", ctypes.c_uint32 * 5),
        ("attrs", LineConfigAttribute * GPIO_V2_LINE_NUM_ATTRS_MAX),
    ]


class LineRequest(ctypes.Structure):  # struct gpio_v2_line_request
    _fields_ = [
        ("offsets", ctypes.c_uint32 * GPIO_V2_LINES_MAX),
        ("consumer", ctypes.c_char * GPIO_MAX_NAME_SIZE),
        ("config", LineConfig),
        ("num_lines", ctypes.c_uint32),
        ("event_buffer_size", ctypes.c_uint32),
        ("padding", ctypes.c_uint32 * 5),
        ("fd", ctypes.c_int32),
    ]


class LineValues(ctypes.Structure):  # struct gpio_v2_line_values
    _fields_ = [("bits", ctypes.c_uint64), ("mask", ctypes.c_uint64)]


class ChipInfo(ctypes.Structure):  # struct gpiochip_info
    _fields_ = [
        ("name", ctypes.c_char * GPIO_MAX_NAME_SIZE),
        ("label", ctypes.c_char * GPIO_MAX_NAME_SIZE),
        ("lines", ctypes.c_uint32),
    ]


# <asm-generic/ioctl.h>, the encoding arm64 and x86 both use.
_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, kind: int, number: int, size: int) -> int:
    return direction << 30 | size << 16 | kind << 8 | number


def _iowr(kind: int, number: int, struct: type[ctypes.Structure]) -> int:
    return _ioc(_IOC_READ | _IOC_WRITE, kind, number, ctypes.sizeof(struct))


def _ior(kind: int, number: int, size: int) -> int:
    return _ioc(_IOC_READ, kind, number, size)


GPIO_GET_CHIPINFO_IOCTL = _ior(0xB4, 0x01, ctypes.sizeof(ChipInfo))
GPIO_V2_GET_LINE_IOCTL = _iowr(0xB4, 0x07, LineRequest)
GPIO_V2_LINE_GET_VALUES_IOCTL = _iowr(0xB4, 0x0E, LineValues)
GPIO_V2_LINE_SET_VALUES_IOCTL = _iowr(0xB4, 0x0F, LineValues)
