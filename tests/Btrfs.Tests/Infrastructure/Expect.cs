namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Xunit;

    /// <summary>The assertions and commands many test classes share: one error as users see it, one result of a command.</summary>
    internal static class Expect
    {
        /// <summary>
        /// The one error about <paramref name="target"/>: its id as the cmdlet <paramref name="cmdlet"/>
        /// (e.g. "SetNoCowCommand") reports it, its category, and the target's path and every part in
        /// its message (ordinal).
        /// </summary>
        internal static ErrorRecord Error(PwshResult r, string cmdlet, string target, string id, ErrorCategory category, params string[] parts) =>
            ErrorSaying(r, cmdlet, target, id, category, parts.Append(target).ToArray());

        /// <summary>As <see cref="Error"/>, but the message need not name the target (only the parts given).</summary>
        internal static ErrorRecord ErrorSaying(PwshResult r, string cmdlet, string target, string id, ErrorCategory category, params string[] parts)
        {
            ErrorRecord e = Assert.Single(r.Errors, x => Equals(x.TargetObject, target));
            Assert.Equal($"{id},Btrfs.Commands.{cmdlet}", e.FullyQualifiedErrorId);
            Assert.Equal(category, e.CategoryInfo.Category);
            foreach (string part in parts)
            {
                Assert.Contains(part, e.Exception.Message, StringComparison.Ordinal);
            }

            return e;
        }

        /// <summary>Runs <paramref name="script"/>: no error, and exactly one object, a <typeparamref name="T"/>.</summary>
        internal static T One<T>(string script, params (string, object?)[] vars)
        {
            PwshResult r = Pwsh.Run(script, vars);
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            return Assert.Single(r.Objects<T>());
        }

        /// <summary>Invoke-BtrfsDefrag on one file (with <paramref name="extra"/> parameters): its one result, no error.</summary>
        internal static DefragResult Defrag(string path, string extra = "") => One<DefragResult>("Invoke-BtrfsDefrag -LiteralPath $p " + extra, ("p", path));

        /// <summary>Test-NoCow -Detailed on one file.</summary>
        internal static NoCowStatus NoCow(string path) => One<NoCowStatus>("Test-NoCow -LiteralPath $p -Detailed", ("p", path));

        /// <summary>Test-BtrfsSwapfile -Detailed on one file.</summary>
        internal static SwapfileStatus Swapfile(string path) => One<SwapfileStatus>("Test-BtrfsSwapfile -LiteralPath $p -Detailed", ("p", path));
    }
}
