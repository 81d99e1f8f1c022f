"""Test support for stores: the shared contract suite and realistic commits.

Every store (the bundled ones and any an embedding system writes) passes the same suite::

    from casemgmt_core.testing import CaseStoreContract

    class TestMyStore(CaseStoreContract):
        @pytest.fixture
        def store(self): ...

This package imports ``pytest`` (a test dependency): import it from tests only.
"""

from .access import AccessRuleContract
from .builders import ACTOR, T0, deadline, follow, household, open_commit
from .contract import CaseStoreContract, StoredRowsContract

__all__ = [
    "ACTOR",
    "AccessRuleContract",
    "T0",
    "CaseStoreContract",
    "StoredRowsContract",
    "deadline",
    "follow",
    "household",
    "open_commit",
]
