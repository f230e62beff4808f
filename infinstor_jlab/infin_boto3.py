"""The public import path of time travel: ``from infinstor_jlab import infin_boto3`` (or
``import infinstor_jlab.infin_boto3 as boto3``). The code lives in
:mod:`infinstor_jlab.kernel.infin_boto3`; this name is that very module (its state, such as
the process-wide view, is shared, not copied)."""

import sys

from .kernel import infin_boto3 as _module

sys.modules[__name__] = _module
