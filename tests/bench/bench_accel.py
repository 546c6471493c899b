"""Which accelerators a benchmark run uses (shared by the bench scripts)."""
import os
import stat


def kvm_works():
    """/dev/kvm is a character device this process can open."""
    try:
        if not stat.S_ISCHR(os.stat("/dev/kvm").st_mode):
            return False
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
        return True
    except OSError:
        return False


def accels_for(choice):
    """--accel kvm|tcg|both|auto -> the list to run (auto: tcg, and kvm where it works)."""
    if choice == "auto":
        return ["tcg"] + (["kvm"] if kvm_works() else [])
    if choice == "both":
        return ["tcg", "kvm"]
    return [choice]
