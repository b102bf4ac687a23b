"""Run a Commonsbox image under QEMU and drive it from outside (the VM test harness).

    with VM(Path("/var/tmp/commonsbox/qemu-amd64")) as vm:   # a built image's directory
        status = vm.wait_ready()            # asks the agent until it answers
        vm.run(["systemctl", "--failed"])   # a command in the guest (test images only)

Named ``cbvm`` so it cannot shadow the QEMU project's ``qemu`` package.
"""

from .vm import VM, VMError

__all__ = ["VM", "VMError"]
