"""The engine's side of live controls: after each optimizer step, answer new requests from the run's control file
(checkpoint now; stop after the next evaluation) and stop when an armed evaluation has come. Each answer is a
`control` event, so every viewer sees it; no request goes unanswered: those that come at the last step, or while
the run ends, are answered too, and a multi-process run refuses each with the reason."""

from __future__ import annotations

from typing import Any

from engine.control_requests import ControlInbox, ControlRequest
from engine.errors import EngineError
from engine.protocol import Control


class LiveControls:
    """Owned by the trainer (`trainer.live`); `after_step` returns True when the run should stop now.

    `refusal`: why this run takes no live controls (several processes train it); each request is refused with it."""

    def __init__(self, trainer: Any, inbox: ControlInbox, refusal: str = "") -> None:
        self.trainer = trainer
        self.inbox = inbox
        self.refusal = refusal
        self.armed: ControlRequest | None = None

    def _answer(self, request: ControlRequest, status: str, detail: str = "") -> None:
        self.trainer.emit(Control(request=request.id, action=request.action, status=status,
                                  step=self.trainer.state.step, detail=detail))

    def after_step(self, saved_this_step: bool) -> bool:
        st, mon = self.trainer.state, self.trainer.cfg.monitoring
        if self.armed is not None and st.last_eval_step == st.step:
            request, self.armed = self.armed, None
            folder = None if saved_this_step else self.trainer.save()
            where = f"checkpoint {folder.name}" if folder is not None else "this step's checkpoint"
            self._answer(request, "stopping", f"evaluated at step {st.step} (eval loss {st.eval_losses[-1]:.4f}); "
                                              f"{where} saved; the run ends as completed")
            self.trainer.log("info", f"stopping after the evaluation at step {st.step}, as asked "
                                     f"({request.source or 'a viewer'})")
            st.stopped_early = True
            st.stop_reason = f"stopped after the evaluation at step {st.step}, as asked ({request.source or 'a viewer'})"
            return True
        for request in self.inbox.poll():
            if self.refusal:
                self._answer(request, "refused", self.refusal)
            elif request.action == "checkpoint":
                folder = self.trainer.save()
                saved_this_step = True
                self._answer(request, "done", f"saved {folder}")
            elif request.action == "stop_after_eval":
                if not (mon.eval_steps and self.trainer.eval_set):
                    self._answer(request, "refused", "this run has no periodic evaluation (monitoring.eval_steps "
                                                     "is 0 or there is no eval set): cancel instead, which also "
                                                     "saves a checkpoint")
                    continue
                self.armed = request
                next_eval = (st.step // mon.eval_steps + 1) * mon.eval_steps
                last = getattr(self.trainer, "total_steps", 0)
                if last and next_eval >= last:  # the run's last step evaluates (and ends) first
                    self._answer(request, "armed", f"stops after the evaluation at step {last}, the run's last")
                else:
                    self._answer(request, "armed", f"stops after the evaluation at step {next_eval}")
        return False

    def at_last_step(self) -> None:
        """The run's last step is done (it evaluates and saves its weights next): answer what is waiting."""
        step = self.trainer.state.step
        ends = f"step {step} is the run's last: it evaluates, saves its final weights to weights/ and ends now"
        waiting = ([self.armed] if self.armed is not None else []) + self.inbox.poll()
        self.armed = None
        for request in waiting:
            if self.refusal:
                self._answer(request, "refused", self.refusal)
            elif request.action == "stop_after_eval":
                self._answer(request, "stopping", ends)
            else:
                self._answer(request, "refused", f"{ends} (a completed run is not resumed: no checkpoint needed)")

    def at_end(self, status: str) -> None:
        """The run has ended `status`: refuse what is still waiting (an armed stop, requests sent since)."""
        answer_at_end(self.inbox, self.trainer.emit, self.trainer.state.step, status,
                      [self.armed] if self.armed is not None else [])
        self.armed = None


def answer_at_end(inbox: ControlInbox, emit: Any, step: int, status: str,
                  waiting: list[ControlRequest] | None = None) -> None:
    """Refuse every request still waiting once the run has ended (also when it failed before it trained)."""
    for request in (waiting or []) + inbox.poll():
        try:
            emit(Control(request=request.id, action=request.action, status="refused", step=step,
                         detail=f"the run has ended ({status} at step {step}): nothing to control"))
        except EngineError:  # the record can no longer be written (its failure is the run's error)
            return
