namespace Btrfs.Tests.Infrastructure
{
    using System;

    /// <summary>A mount namespace no process is in, kept by a bind mount of its nsfs file (unshare --mount=FILE).</summary>
    internal static class KeptNamespace
    {
        /// <summary>
        /// Makes one at <paramref name="file"/> (on a private mount) and runs <paramref name="script"/> in it.
        /// util-linux 2.38's unshare now and then fails to keep it (EINVAL from the bind mount of the nsfs file,
        /// before the script runs): it is tried again, up to ten times.
        /// </summary>
        internal static void Make(string file, string script)
        {
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    Shell.Run("sh", "-c", $"touch '{file}'");
                    Shell.Run("unshare", $"--mount={file}", "--propagation", "private", "sh", "-c", script);
                    return;
                }
                catch (InvalidOperationException ex) when (attempt < 10 && ex.Message.Contains("Invalid argument", StringComparison.Ordinal) && ex.Message.Contains("ns/mnt on", StringComparison.Ordinal))
                {
                    Shell.Run("sh", "-c", $"umount '{file}' 2>/dev/null; true");
                    System.Threading.Thread.Sleep(50);
                }
            }
        }
    }
}
