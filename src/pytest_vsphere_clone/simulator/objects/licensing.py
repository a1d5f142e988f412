"""LicenseManager and LicenseAssignmentManager of a vCenter in evaluation mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import vmomi_method
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext

#: The key a vCenter and its hosts report while in evaluation mode (60 days).
EVALUATION_KEY = "00000-00000-00000-00000-00000"
EVALUATION_HOURS = 60 * 24


def evaluation_license() -> Any:
    """The LicenseManagerLicenseInfo of the evaluation license."""
    return vim.LicenseManager.LicenseInfo(
        licenseKey=EVALUATION_KEY, editionKey="eval", name="Evaluation Mode", total=0, used=0, costUnit="",
        properties=[vmodl.KeyAnyValue(key="expirationHours", value=EVALUATION_HOURS),
                    vmodl.KeyAnyValue(key="expirationMinutes", value=0)])


class LicenseManager(Unmodelled):
    """vim.LicenseManager: one evaluation license, no license server."""

    vim_type = vim.LicenseManager

    def prop_licenses(self) -> list[Any]:
        return [evaluation_license()]

    def prop_source(self) -> Any:
        return vim.LicenseManager.EvaluationLicense(remainingHours=EVALUATION_HOURS)

    def prop_sourceAvailable(self) -> bool:
        return True

    def prop_licensedEdition(self) -> str:
        return ""

    def prop_featureInfo(self) -> list[Any]:
        return []

    def prop_evaluation(self) -> Any:
        return vim.LicenseManager.EvaluationInfo(
            properties=[vmodl.KeyAnyValue(key="expirationHours", value=EVALUATION_HOURS),
                        vmodl.KeyAnyValue(key="expirationMinutes", value=0)])

    def prop_licenseAssignmentManager(self) -> Any:
        return vim.LicenseAssignmentManager("LicenseAssignmentManager")

    @vmomi_method()
    def DecodeLicense(self, ctx: CallContext, licenseKey: str) -> Any:
        if licenseKey == EVALUATION_KEY:
            return evaluation_license()
        # LicenseManager.DecodeLicense: an unknown key decodes to an info whose name says so.
        return vim.LicenseManager.LicenseInfo(licenseKey=licenseKey, editionKey="", name="Unknown", total=0,
                                              costUnit="")


class LicenseAssignmentManager(Unmodelled):
    """vim.LicenseAssignmentManager: the vCenter and every host hold the evaluation license."""

    vim_type = vim.LicenseAssignmentManager

    @vmomi_method()
    def QueryAssignedLicenses(self, ctx: CallContext, entityId: str | None = None) -> list[Any]:
        from .inventory import HostSystem

        with self.vc.lock:
            entities = [(self.vc.instance_uuid, "VMware vCenter Server")]
            entities += [(host.mo_id, host.name) for host in self.vc.of_type(HostSystem)]
        return [vim.LicenseAssignmentManager.LicenseAssignment(entityId=key, assignedLicense=evaluation_license(),
                                                               entityDisplayName=name)
                for key, name in entities if entityId in (None, "", key)]
