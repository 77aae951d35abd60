namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;
    using Xunit.Abstractions;

    /// <summary>
    /// The Pester suite in tests/Pester (the cmdlet surface as users call it), run by a real pwsh with
    /// Pester 5.9.1, as part of `dotnet test Btrfs.sln`; the same suite runs alone with
    /// `Invoke-Pester ./tests/Pester`. It makes its own loop filesystems with the same fixture class.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class PesterSuiteTests(ITestOutputHelper log)
    {
        [SkippableFact]
        public void ThePesterSuitePasses()
        {
            string script = """
                Import-Module $Pester -ErrorAction Stop
                $config = New-PesterConfiguration
                $config.Run.Path = $Suite
                $config.Run.PassThru = $true
                $config.Output.Verbosity = 'Detailed'
                $r = Invoke-Pester -Configuration $config
                $r.Failed | ForEach-Object { 'FAILED: ' + $_.ExpandedPath + ': ' + ($_.ErrorRecord.Exception.Message -join ' ') }
                $r.Skipped | ForEach-Object { 'SKIPPED: ' + $_.ExpandedPath }
                'passed={0} failed={1} skipped={2} notrun={3}' -f $r.PassedCount, $r.FailedCount, $r.SkippedCount, $r.NotRunCount
                """;
            RealPwsh.Result r = RealPwsh.Run(
                script,
                null,
                ("Pester", UserMaterialTests.PesterModule("5.9.1")),
                ("Suite", Path.Combine(RepoPaths.Root, "tests", "Pester")));
            log.WriteLine(r.StdOut);
            string summary = r.Lines.LastOrDefault(l => l.StartsWith("passed=", StringComparison.Ordinal)) ?? string.Empty;
            Assert.True(summary.Length > 0, r.StdOut + r.StdErr);
            int Count(string key) => int.Parse(summary.Split(' ').First(p => p.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(Count("failed") == 0, string.Join("\n", r.Lines.Where(l => l.StartsWith("FAILED: ", StringComparison.Ordinal))));
            Requires.That(Count("skipped") == 0, "Pester skipped tests: " + string.Join("\n", r.Lines.Where(l => l.StartsWith("SKIPPED: ", StringComparison.Ordinal))));
            Assert.Equal(0, Count("notrun"));
            Assert.True(Count("passed") >= 20, summary);
        }
    }
}
