"""Fails unless the ```python blocks of the README's "## Python" section are,
in order, the files given (the examples the cross-language test runs)."""

import re
import sys

readme = open(sys.argv[1], encoding="utf-8").read()
section = re.search(r"^## Python\n(.*?)(?=^## )", readme, re.M | re.S)
if section is None:
    sys.exit("README has no '## Python' section")
readme = section.group(1)
blocks = re.findall(r"^```python\n(.*?)^```$", readme, re.M | re.S)
files = sys.argv[2:]
if len(blocks) != len(files):
    sys.exit("README has %d python blocks, expected %d (%s)" % (len(blocks), len(files), files))
for block, path in zip(blocks, files):
    if block != open(path, encoding="utf-8").read():
        sys.exit("README's python block differs from %s" % path)
print("README python blocks match %s" % ", ".join(files))
