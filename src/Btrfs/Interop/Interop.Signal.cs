namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>A thread's id and a signal sent to one thread of this process: gettid(2) and tgkill(2) through syscall(2) (glibc before 2.30 has no wrappers).</summary>
    internal static partial class Libc
    {
        /// <summary>The syscall number of gettid: 186 on x86_64, 178 on arm64 (asm-generic).</summary>
        internal static long SYS_gettid => IsArm64 ? 178 : 186;

        /// <summary>The syscall number of tgkill: 234 on x86_64, 131 on arm64 (asm-generic).</summary>
        internal static long SYS_tgkill => IsArm64 ? 131 : 234;

        /// <summary>The first real-time signal the C library leaves to programs (glibc: 34, musl: 35).</summary>
        [LibraryImport(Name, EntryPoint = "__libc_current_sigrtmin")]
        internal static partial int CurrentSigRtMin();
    }
}
