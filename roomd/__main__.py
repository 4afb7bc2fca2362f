import sys

from roomd.main import main

sys.exit(main())
