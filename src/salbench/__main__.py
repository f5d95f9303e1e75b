import sys

from salbench.cli import main

sys.exit(main())
