"""A 5x7 bitmap font for ASCII 32..126 (the classic character-LCD shapes).

Each glyph is 5 columns, one byte per column, bit 0 at the top: the same layout as an
SSD1306 page byte, so a glyph can be copied into a page. Drawn in a 6x8 cell (one
blank column and row between characters): 21 characters by 8 lines on 128x64.
"""

CELL_WIDTH = 6
CELL_HEIGHT = 8
GLYPH_WIDTH = 5
FIRST, LAST = 32, 126
REPLACEMENT = "?"

_GLYPHS = bytes.fromhex(
    "0000000000"
    "00005f0000"
    "0007000700"
    "147f147f14"
    "242a7f2a12"  # space ! " # $
    "2313086462"
    "3649552250"
    "0005030000"
    "001c224100"
    "0041221c00"  # % & ' ( )
    "082a1c2a08"
    "08083e0808"
    "0050300000"
    "0808080808"
    "0060600000"  # * + , - .
    "2010080402"
    "3e5149453e"
    "00427f4000"
    "4261514946"
    "2141454b31"  # / 0 1 2 3
    "1814127f10"
    "2745454539"
    "3c4a494930"
    "0171090503"
    "3649494936"  # 4 5 6 7 8
    "064949291e"
    "0036360000"
    "0056360000"
    "0814224100"
    "1414141414"  # 9 : ; < =
    "0041221408"
    "0201510906"
    "324979413e"
    "7e1111117e"
    "7f49494936"  # > ? @ A B
    "3e41414122"
    "7f4141221c"
    "7f49494941"
    "7f09090101"
    "3e41415132"  # C D E F G
    "7f0808087f"
    "00417f4100"
    "2040413f01"
    "7f08142241"
    "7f40404040"  # H I J K L
    "7f0204027f"
    "7f0408107f"
    "3e4141413e"
    "7f09090906"
    "3e4151215e"  # M N O P Q
    "7f09192946"
    "4649494931"
    "01017f0101"
    "3f4040403f"
    "1f2040201f"  # R S T U V
    "7f2018207f"
    "6314081463"
    "0304780403"
    "6151494543"
    "007f414100"  # W X Y Z [
    "0204081020"
    "0041417f00"
    "0402010204"
    "4040404040"
    "0001020400"  # \ ] ^ _ `
    "2054545478"
    "7f48444438"
    "3844444420"
    "384444487f"
    "3854545418"  # a b c d e
    "087e090102"
    "081454543c"
    "7f08040478"
    "00447d4000"
    "2040443d00"  # f g h i j
    "007f102844"
    "00417f4000"
    "7c04180478"
    "7c08040478"
    "3844444438"  # k l m n o
    "7c14141408"
    "081414187c"
    "7c08040408"
    "4854545420"
    "043f444020"  # p q r s t
    "3c4040207c"
    "1c2040201c"
    "3c4030403c"
    "4428102844"
    "0c5050503c"  # u v w x y
    "4464544c44"
    "0008364100"
    "00007f0000"
    "0041360800"
    "0804081008"  # z { | } ~
)


def glyph(char: str) -> bytes:
    """The 5 column bytes of a character; '?' for anything outside ASCII 32..126."""
    code = ord(char) if len(char) == 1 else -1
    if not FIRST <= code <= LAST:
        code = ord(REPLACEMENT)
    start = (code - FIRST) * GLYPH_WIDTH
    return _GLYPHS[start : start + GLYPH_WIDTH]
