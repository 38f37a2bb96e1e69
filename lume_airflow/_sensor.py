"""``LumeRunSensor``: wait for a run that already exists, in the worker or in the triggerer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from ._hook import LumeHook
from ._outcome import check_outcome, event_of
from ._trigger import LumeRunTrigger
from ._validation import check_bool, check_conn_id, check_poll_interval, check_run_id

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["LumeRunSensor"]


class LumeRunSensor(BaseSensorOperator):
    """Wait until the Lume run ``run_id`` (templated) is finished.

    Returns (XCom) ``{run_id, status, mapped_rows, rejected_rows, target_locations}``; a run that
    ended FAILED, CRASHED or CANCELED fails the task, and PARTIAL_FAILED does too with
    ``fail_on_partial``. ``poke_interval`` (5 s unless given) and ``timeout`` are the sensor's
    own; with ``deferrable=True`` the wait happens in the triggerer through ``LumeRunTrigger``,
    which looks every ``poke_interval`` (then above 0 s, or the sensor is refused when defined).
    Killing the sensor leaves the run alone: it was not the sensor's to start.
    """

    template_fields: Sequence[str] = ("run_id",)

    def __init__(
        self,
        *,
        run_id: str,
        lume_conn_id: str = LumeHook.default_conn_name,
        fail_on_partial: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: timedelta | float = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.run_id = run_id
        self.lume_conn_id = check_conn_id(lume_conn_id)
        self.fail_on_partial = check_bool(fail_on_partial, "fail_on_partial")
        self.deferrable = check_bool(deferrable, "deferrable")
        if self.deferrable:
            # Poking without a pause is Airflow's to allow; the trigger needs one between looks.
            check_poll_interval(self.poke_interval, "poke_interval")

    @cached_property
    def hook(self) -> LumeHook:
        """The hook of this sensor's ``lume_conn_id`` connection."""
        return LumeHook(self.lume_conn_id)

    def execute(self, context: Context) -> Any:
        """Poke until the run is finished, or defer to the triggerer with ``deferrable=True``."""
        if self.deferrable:
            self.defer(
                trigger=LumeRunTrigger(
                    check_run_id(self.run_id),
                    self.lume_conn_id,
                    poll_interval=self.poke_interval,
                    timeout=self.timeout,
                ),
                method_name="execute_complete",
            )
        return super().execute(context)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Look at the run once: not done yet, or done with its summary as the XCom.

        Raises:
            AirflowException: The run ended FAILED, CRASHED or CANCELED (or PARTIAL_FAILED with
                ``fail_on_partial``).
        """
        with self.hook.get_client() as lume:
            run = lume.run_status(check_run_id(self.run_id))
        self.log.info("Lume run %s is %s", run.id, run.status.value)
        if not run.is_terminal:
            return False
        try:
            summary = check_outcome(event_of(run), fail_on_partial=self.fail_on_partial)
        except AirflowException as exc:
            raise AirflowFailException(str(exc)) from exc  # the run has ended: final
        return PokeReturnValue(is_done=True, xcom_value=summary)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back from the triggerer: the XCom summary, or the task fails with the run's errors."""
        if event.get("timed_out"):
            raise AirflowSensorTimeout(f"Lume run {event.get('run_id')}: {event.get('message')}")
        try:
            return check_outcome(event, fail_on_partial=self.fail_on_partial)
        except AirflowException as exc:
            if event.get("message"):
                raise  # the wait ended early (a refused key, a vanished run): a retry may help
            raise AirflowFailException(str(exc)) from exc
