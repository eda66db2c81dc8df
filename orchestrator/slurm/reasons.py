"""Slurm 22.05's job reason names, in its enum order (what ``job_reason_string`` returns).

sacct's ``--reason`` takes these names, in any case, and refuses any other; read off Slurm 22.05's
own library, so the commands accept exactly what Slurm's do.
"""

from __future__ import annotations

__all__ = ["JOB_REASONS", "reason_name"]

JOB_REASONS: tuple[str, ...] = (
    "None", "Priority", "Dependency", "Resources", "PartitionNodeLimit", "PartitionTimeLimit", "PartitionDown",
    "PartitionInactive", "JobHeldAdmin", "BeginTime", "Licenses", "AssociationJobLimit",
    "AssociationResourceLimit", "AssociationTimeLimit", "Reservation", "ReqNodeNotAvail", "JobHeldUser",
    "FrontEndDown", "SchedDefer", "NodeDown", "BadConstraints", "SystemFailure", "JobLaunchFailure",
    "NonZeroExitCode", "TimeLimit", "InactiveLimit", "InvalidAccount", "InvalidQOS", "QOSUsageThreshold",
    "QOSJobLimit", "QOSResourceLimit", "QOSTimeLimit", "BlockMaxError", "BlockFreeAction", "Cleaning",
    "Prolog", "QOSNotAllowed", "AccountNotAllowed", "DependencyNeverSatisfied", "QOSGrpCpuLimit",
    "QOSGrpCPUMinutesLimit", "QOSGrpCPURunMinutesLimit", "QOSGrpJobsLimit", "QOSGrpMemLimit",
    "QOSGrpNodeLimit", "QOSGrpSubmitJobsLimit", "QOSGrpWallLimit", "QOSMaxCpuPerJobLimit",
    "QOSMaxCpuMinutesPerJobLimit", "QOSMaxNodePerJobLimit", "QOSMaxWallDurationPerJobLimit",
    "QOSMaxCpuPerUserLimit", "QOSMaxJobsPerUserLimit", "QOSMaxNodePerUserLimit", "QOSMaxSubmitJobPerUserLimit",
    "QOSMinCpuNotSatisfied", "AssocGrpCpuLimit", "AssocGrpCPUMinutesLimit", "AssocGrpCPURunMinutesLimit",
    "AssocGrpJobsLimit", "AssocGrpMemLimit", "AssocGrpNodeLimit", "AssocGrpSubmitJobsLimit",
    "AssocGrpWallLimit", "AssocMaxJobsLimit", "AssocMaxCpuPerJobLimit", "AssocMaxCpuMinutesPerJobLimit",
    "AssocMaxNodePerJobLimit", "AssocMaxWallDurationPerJobLimit", "AssocMaxSubmitJobLimit",
    "JobHoldMaxRequeue", "JobArrayTaskLimit", "BurstBufferResources", "BurstBufferStageIn",
    "BurstBufferOperation", "PowerNotAvail", "PowerReserved", "AssocGrpUnknown", "AssocGrpUnknownMinutes",
    "AssocGrpUnknownRunMinutes", "AssocMaxUnknownPerJob", "AssocMaxUnknownPerNode",
    "AssocMaxUnknownMinutesPerJob", "AssocMaxCpuPerNode", "AssocGrpMemMinutes", "AssocGrpMemRunMinutes",
    "AssocMaxMemPerJob", "AssocMaxMemPerNode", "AssocMaxMemMinutesPerJob", "AssocGrpNodeMinutes",
    "AssocGrpNodeRunMinutes", "AssocMaxNodeMinutesPerJob", "AssocGrpEnergy", "AssocGrpEnergyMinutes",
    "AssocGrpEnergyRunMinutes", "AssocMaxEnergyPerJob", "AssocMaxEnergyPerNode", "AssocMaxEnergyMinutesPerJob",
    "AssocGrpGRES", "AssocGrpGRESMinutes", "AssocGrpGRESRunMinutes", "AssocMaxGRESPerJob",
    "AssocMaxGRESPerNode", "AssocMaxGRESMinutesPerJob", "AssocGrpLicense", "AssocGrpLicenseMinutes",
    "AssocGrpLicenseRunMinutes", "AssocMaxLicensePerJob", "AssocMaxLicenseMinutesPerJob", "AssocGrpBB",
    "AssocGrpBBMinutes", "AssocGrpBBRunMinutes", "AssocMaxBBPerJob", "AssocMaxBBPerNode",
    "AssocMaxBBMinutesPerJob", "QOSGrpUnknown", "QOSGrpUnknownMinutes", "QOSGrpUnknownRunMinutes",
    "QOSMaxUnknownPerJob", "QOSMaxUnknownPerNode", "QOSMaxUnknownPerUser", "QOSMaxUnknownMinutesPerJob",
    "QOSMinUnknown", "QOSMaxCpuPerNode", "QOSGrpMemoryMinutes", "QOSGrpMemoryRunMinutes",
    "QOSMaxMemoryMinutesPerJob", "QOSMaxMemoryPerJob", "QOSMaxMemoryPerNode", "QOSMaxMemoryPerUser",
    "QOSMinMemory", "QOSGrpEnergy", "QOSGrpEnergyMinutes", "QOSGrpEnergyRunMinutes", "QOSMaxEnergyPerJob",
    "QOSMaxEnergyPerNode", "QOSMaxEnergyPerUser", "QOSMaxEnergyMinutesPerJob", "QOSMinEnergy",
    "QOSGrpNodeMinutes", "QOSGrpNodeRunMinutes", "QOSMaxNodeMinutesPerJob", "QOSMinNode", "QOSGrpGRES",
    "QOSGrpGRESMinutes", "QOSGrpGRESRunMinutes", "QOSMaxGRESPerJob", "QOSMaxGRESPerNode", "QOSMaxGRESPerUser",
    "QOSMaxGRESMinutesPerJob", "QOSMinGRES", "QOSGrpLicense", "QOSGrpLicenseMinutes",
    "QOSGrpLicenseRunMinutes", "QOSMaxLicensePerJob", "QOSMaxLicensePerUser", "QOSMaxLicenseMinutesPerJob",
    "QOSMinLicense", "QOSGrpBB", "QOSGrpBBMinutes", "QOSGrpBBRunMinutes", "QOSMaxBBPerJob", "QOSMaxBBPerNode",
    "QOSMaxBBPerUser", "QOSMinBB", "DeadLine", "MaxBBPerAccount", "MaxCpuPerAccount", "MaxEnergyPerAccount",
    "MaxGRESPerAccount", "MaxNodePerAccount", "MaxLicensePerAccount", "MaxMemoryPerAccount",
    "MaxUnknownPerAccount", "MaxJobsPerAccount", "MaxSubmitJobsPerAccount", "PartitionConfig",
    "AccountingPolicy", "FedJobLock", "OutOfMemory", "MaxMemPerLimit", "AssocGrpBilling",
    "AssocGrpBillingMinutes", "AssocGrpBillingRunMinutes", "AssocMaxBillingPerJob", "AssocMaxBillingPerNode",
    "AssocMaxBillingMinutesPerJob", "QOSGrpBilling", "QOSGrpBillingMinutes", "QOSGrpBillingRunMinutes",
    "QOSMaxBillingPerJob", "QOSMaxBillingPerNode", "QOSMaxBillingPerUser", "QOSMaxBillingMinutesPerJob",
    "MaxBillingPerAccount", "QOSMinBilling", "ReservationDeleted",
)

_BY_LOWER: dict[str, str] = {}
for _name in JOB_REASONS:
    _BY_LOWER.setdefault(_name.lower(), _name)


def reason_name(text: str) -> str | None:
    """The reason ``text`` names (case-insensitive, as job_reason_num() reads it), or None."""
    return _BY_LOWER.get(text.lower())
