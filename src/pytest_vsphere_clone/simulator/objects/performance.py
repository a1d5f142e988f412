"""PerformanceManager: vCenter's counter catalogue and intervals; statistics the simulator can measure.

The counter keys and their metadata are a vCenter's (govmomi's ``simulator/vpx``
capture of ``PerformanceManager.perfCounter``). The simulator measures one
statistic honestly, ``sys.uptime.latest`` of running VMs and hosts; it reports
no series for counters it cannot measure rather than inventing values.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import vmomi_method
from .unmodelled import Unmodelled

if TYPE_CHECKING:
    from ..vcenter import CallContext

#: (key, group, group label, name, label, summary, rollup, unit, unit label, stats type, level, per-device level)
COUNTERS: tuple[tuple[int, str, str, str, str, str, str, str, str, str, int, int], ...] = (
    (2, "cpu", "CPU", "usage", "Usage", "CPU usage as a percentage during the interval", "average", "percent",
     "%", "rate", 1, 3),
    (6, "cpu", "CPU", "usagemhz", "Usage in MHz", "CPU usage in megahertz during the interval", "average",
     "megaHertz", "MHz", "rate", 1, 3),
    (12, "cpu", "CPU", "ready", "Ready", "Time that the virtual machine was ready, but could not get scheduled "
     "to run on the physical CPU during last measurement interval", "summation", "millisecond", "ms", "delta", 1, 3),
    (24, "mem", "Memory", "usage", "Host consumed %", "Percentage of host physical memory that has been consumed",
     "average", "percent", "%", "absolute", 1, 3),
    (29, "mem", "Memory", "granted", "Granted", "Amount of host physical memory or physical memory that is "
     "mapped for a virtual machine or a host", "average", "kiloBytes", "KB", "absolute", 2, 3),
    (33, "mem", "Memory", "active", "Active", "Amount of guest physical memory that is being actively read or "
     "written by guest. Activeness is estimated by ESXi", "average", "kiloBytes", "KB", "absolute", 2, 3),
    (98, "mem", "Memory", "consumed", "Consumed", "Amount of host physical memory consumed for backing up guest "
     "physical memory pages", "average", "kiloBytes", "KB", "absolute", 1, 3),
    (125, "disk", "Disk", "usage", "Usage", "Aggregated disk I/O rate. For hosts, this metric includes the rates "
     "for all virtual machines running on the host during the collection interval.", "average",
     "kiloBytesPerSecond", "KBps", "rate", 1, 3),
    (130, "disk", "Disk", "read", "Read rate", "Average number of kilobytes read from the disk each second during "
     "the collection interval", "average", "kiloBytesPerSecond", "KBps", "rate", 2, 3),
    (131, "disk", "Disk", "write", "Write rate", "Average number of kilobytes written to disk each second during "
     "the collection interval", "average", "kiloBytesPerSecond", "KBps", "rate", 2, 3),
    (143, "net", "Network", "usage", "Usage", "Network utilization (combined transmit-rates and receive-rates) "
     "during the interval", "average", "kiloBytesPerSecond", "KBps", "rate", 1, 3),
    (148, "net", "Network", "received", "Data receive rate", "Average rate at which data was received during the "
     "interval", "average", "kiloBytesPerSecond", "KBps", "rate", 2, 3),
    (149, "net", "Network", "transmitted", "Data transmit rate", "Average rate at which data was transmitted "
     "during the interval", "average", "kiloBytesPerSecond", "KBps", "rate", 2, 3),
    (155, "sys", "System", "uptime", "Uptime", "Total time elapsed, in seconds, since last system startup",
     "latest", "second", "s", "absolute", 1, 3),
    (157, "power", "Power", "power", "Usage", "Current power usage", "average", "watt", "W", "rate", 2, 3),
    (173, "virtualDisk", "Virtual disk", "read", "Read rate", "Rate of reading data from the virtual disk",
     "average", "kiloBytesPerSecond", "KBps", "rate", 2, 2),
    (174, "virtualDisk", "Virtual disk", "write", "Write rate", "Rate of writing data to the virtual disk",
     "average", "kiloBytesPerSecond", "KBps", "rate", 2, 2),
    (180, "datastore", "Datastore", "read", "Read rate", "Rate of reading data from the datastore", "average",
     "kiloBytesPerSecond", "KBps", "rate", 2, 2),
    (181, "datastore", "Datastore", "write", "Write rate", "Rate of writing data to the datastore", "average",
     "kiloBytesPerSecond", "KBps", "rate", 2, 2),
    (398, "cpu", "CPU", "demand", "Demand", "The amount of CPU resources a virtual machine would use if there "
     "were no CPU contention or CPU limit", "average", "megaHertz", "MHz", "absolute", 2, 3),
)
UPTIME_COUNTER = 155
#: Real-time statistics of hosts and VMs are sampled every 20 s (PerfProviderSummary.refreshRate).
REFRESH_RATE = 20
#: (key, sampling period s, name, length s): a vCenter's four historical intervals.
INTERVALS = ((1, 300, "Past day", 86400), (2, 1800, "Past week", 604800), (3, 7200, "Past month", 2592000),
             (4, 86400, "Past year", 31536000))


def _describe(key: str, label: str, summary: str | None = None) -> Any:
    return vim.ElementDescription(key=key, label=label, summary=summary or label)


def counter_info(row: tuple[int, str, str, str, str, str, str, str, str, str, int, int]) -> Any:
    key, group, group_label, name, label, summary, rollup, unit, unit_label, stats, level, device_level = row
    return vim.PerformanceManager.CounterInfo(
        key=key, nameInfo=_describe(name, label, summary), groupInfo=_describe(group, group_label),
        unitInfo=_describe(unit, unit_label), rollupType=rollup, statsType=stats, level=level,
        perDeviceLevel=device_level)


class PerformanceManager(Unmodelled):
    """vim.PerformanceManager (``PerfMgr``)."""

    vim_type = vim.PerformanceManager

    def prop_perfCounter(self) -> list[Any]:
        return [counter_info(row) for row in COUNTERS]

    def prop_historicalInterval(self) -> list[Any]:
        return [vim.HistoricalInterval(key=key, samplingPeriod=period, name=name, length=length, level=1,
                                       enabled=True) for key, period, name, length in INTERVALS]

    def prop_description(self) -> Any:
        rollups = ("average", "maximum", "minimum", "latest", "summation", "none")
        return vim.PerformanceDescription(
            counterType=[_describe(r, r.capitalize()) for r in rollups],
            statsType=[_describe(s, s.capitalize()) for s in ("absolute", "delta", "rate")])

    # --- what the simulator measures ------------------------------------------------------

    def _uptime(self, entity: Any) -> int | None:
        """Seconds since a running VM or host started, or None (nothing to report)."""
        from .inventory import HostSystem
        from .virtual_machine import VirtualMachine

        if isinstance(entity, VirtualMachine):
            if entity.power_state != "poweredOn" or entity.boot_time is None:
                return None
            return int(time.time() - entity.boot_time)
        if isinstance(entity, HostSystem):
            return int(time.time() - entity.boot_time)
        return None

    @vmomi_method()
    def QueryPerfProviderSummary(self, ctx: CallContext, entity: Any) -> Any:
        from .inventory import HostSystem
        from .virtual_machine import VirtualMachine

        with self.vc.lock:
            target = self.vc.lookup(entity)
        realtime = isinstance(target, VirtualMachine | HostSystem)
        # PerfProviderSummary: hosts and VMs have real-time statistics; other entities only summaries.
        return vim.PerformanceManager.ProviderSummary(entity=entity, currentSupported=realtime,
                                                      summarySupported=True,
                                                      refreshRate=REFRESH_RATE if realtime else -1)

    @vmomi_method()
    def QueryPerfCounter(self, ctx: CallContext, counterId: list[int]) -> list[Any]:
        wanted = set(counterId)
        return [counter_info(row) for row in COUNTERS if row[0] in wanted]

    @vmomi_method()
    def QueryPerfCounterByLevel(self, ctx: CallContext, level: int) -> list[Any]:
        if not 1 <= level <= 4:
            raise vmodl.fault.InvalidArgument(msg="Level must be between 1 and 4", invalidProperty="level")
        return [counter_info(row) for row in COUNTERS if row[10] <= level]

    @vmomi_method()
    def QueryAvailablePerfMetric(self, ctx: CallContext, entity: Any, beginTime: datetime | None = None,
                                 endTime: datetime | None = None, intervalId: int | None = None) -> list[Any]:
        with self.vc.lock:
            target = self.vc.lookup(entity)
            measured = self._uptime(target) is not None
        return [vim.PerformanceManager.MetricId(counterId=UPTIME_COUNTER, instance="")] if measured else []

    @vmomi_method()
    def QueryPerf(self, ctx: CallContext, querySpec: list[Any]) -> list[Any]:
        results: list[Any] = []
        for spec in querySpec:
            with self.vc.lock:
                target = self.vc.lookup(spec.entity)
                uptime = self._uptime(target)
            wanted = {m.counterId for m in spec.metricId or ()}
            if uptime is None or (wanted and UPTIME_COUNTER not in wanted):
                continue
            interval = spec.intervalId or REFRESH_RATE
            now = datetime.fromtimestamp(int(time.time()) // interval * interval, tz=timezone.utc)
            metric = vim.PerformanceManager.MetricId(counterId=UPTIME_COUNTER, instance="")
            if spec.format == "csv":
                results.append(vim.PerformanceManager.EntityMetricCSV(
                    entity=spec.entity, sampleInfoCSV=f"{interval},{now.strftime('%Y-%m-%dT%H:%M:%SZ')}",
                    value=[vim.PerformanceManager.MetricSeriesCSV(id=metric, value=str(uptime))]))
            else:
                results.append(vim.PerformanceManager.EntityMetric(
                    entity=spec.entity, sampleInfo=[vim.PerformanceManager.SampleInfo(timestamp=now,
                                                                                     interval=interval)],
                    value=[vim.PerformanceManager.IntSeries(id=metric, value=[uptime])]))
        return results
