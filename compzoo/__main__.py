import sys

from compzoo.cli import main

sys.exit(main())
