import os
import sys

# The package from this checkout, whether or not it is installed.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
