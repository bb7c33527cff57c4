import sys

from devtools.bench.legacy import main

sys.exit(main(sys.argv[1:]))
