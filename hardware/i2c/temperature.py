"""LM75-class and TMP102-class temperature sensors (address 0x48 by default).

Both hold the temperature in register 0 as a 16-bit two's complement number, MSB first,
with unused low bits: LM75 9..11 bits (0.5..0.125 °C steps), TMP102 12 bits (0.0625 °C),
13 in its extended mode (flag in bit 0). It is read as a 2-byte I2C block from register
0, which arrives MSB first as the chip sends it (an SMBus *word* read would arrive
little-endian and need a swap); with i2c-stub the same read returns registers 0 and 1.
"""

from dataclasses import dataclass
from typing import Literal

from hardware.errors import DeviceFault, talking_to
from hardware.i2c import Bus

SENSOR_ADDRESS = 0x48
SensorKind = Literal["lm75", "tmp102"]

_TEMPERATURE = 0x00
_CONFIG = 0x01
_TMP102_RESOLUTION = 0x60  # config MSB bits R1 R0: read-only 1 1 on a TMP102
_RANGE = {"lm75": (-55.0, 125.0), "tmp102": (-55.0, 150.0)}  # datasheet limits


@dataclass(frozen=True)
class TemperatureReading:
    kind: SensorKind
    celsius: float


def _signed16(msb: int, lsb: int) -> int:
    value = msb << 8 | lsb
    return value - 0x10000 if value & 0x8000 else value


def decode_lm75(msb: int, lsb: int) -> float:
    """11 significant bits at most (LM75B); a 9-bit LM75 leaves the extra bits 0."""
    return (_signed16(msb, lsb) >> 5) * 0.125


def decode_tmp102(msb: int, lsb: int) -> float:
    if lsb & 0x01:  # extended mode: 13 bits, unused bits 2..1
        if lsb & 0x06:
            raise DeviceFault(f"temperature sensor: unused bits set in 0x{msb:02x}{lsb:02x}")
        return (_signed16(msb, lsb) >> 3) * 0.0625
    if lsb & 0x0F:
        raise DeviceFault(f"temperature sensor: unused bits set in 0x{msb:02x}{lsb:02x}")
    return (_signed16(msb, lsb) >> 4) * 0.0625


class TemperatureSensor:
    """`kind=None` tells the two apart by the TMP102's read-only resolution bits."""

    def __init__(
        self, bus: Bus, address: int = SENSOR_ADDRESS, kind: SensorKind | None = None
    ) -> None:
        self._bus = bus
        self._address = address
        self._kind = kind

    def probe(self) -> SensorKind:
        if self._kind is None:
            with talking_to(f"temperature sensor at 0x{self._address:02x}"):
                config = self._bus.read_byte_data(self._address, _CONFIG)
            # LM75 keeps config bits 7..5 at 0; TMP102 reads R1 R0 = 1 1 there (and a
            # TMP75 set to more than 9 bits uses the TMP102's 12-bit format anyway).
            self._kind = "tmp102" if config & _TMP102_RESOLUTION else "lm75"
        return self._kind

    def read(self) -> TemperatureReading:
        kind = self.probe()
        with talking_to(f"temperature sensor ({kind})"):
            data = self._bus.read_i2c_block_data(self._address, _TEMPERATURE, 2)
        if len(data) != 2:
            raise DeviceFault(f"temperature sensor: {len(data)} bytes, wanted 2")
        msb, lsb = data
        if msb == lsb == 0xFF:  # SDA stuck high, or no sensor drives it
            raise DeviceFault("temperature sensor: reads all ones (bus stuck or not a sensor)")
        celsius = decode_lm75(msb, lsb) if kind == "lm75" else decode_tmp102(msb, lsb)
        low, high = _RANGE[kind]
        if not low <= celsius <= high:
            raise DeviceFault(f"temperature sensor: {celsius} °C is outside {low}..{high} °C")
        return TemperatureReading(kind, celsius)
