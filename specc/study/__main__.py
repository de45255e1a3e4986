"""`python -m specc.study`: run the study and write its table."""

import sys

from specc.study.study import main

sys.exit(main())
