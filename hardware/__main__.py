"""python -m hardware: the box's hardware service (hardware/service.py)."""

import sys

from hardware.service import main

sys.exit(main())
