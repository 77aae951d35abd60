// Imports the module at args[0] (a manifest path) into a fresh runspace and prints, one per line:
// "module <ModuleBase>", "assembly <where Btrfs.dll was loaded from>", then "<cmdlet>|<help synopsis>"
// for each exported cmdlet, and "about <first line of about_Btrfs>". Errors go to stderr, exit code 1.
namespace Btrfs.Tests.Host
{
    using System;
    using System.Linq;
    using System.Management.Automation;
    using System.Management.Automation.Runspaces;

    public static class Program
    {
        public static int Main(string[] args)
        {
            var iss = InitialSessionState.CreateDefault2();
            using Runspace rs = RunspaceFactory.CreateRunspace(iss);
            rs.Open();
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            ps.AddScript("""
                param($manifest)
                $m = Import-Module $manifest -PassThru -ErrorAction Stop
                "module $($m.ModuleBase)"
                "assembly $([Btrfs.Core.FileExtent].Assembly.Location)"
                $m.ExportedCmdlets.Keys | ForEach-Object { '{0}|{1}' -f $_, (Get-Help $_).Synopsis }
                'about ' + ([string](Get-Help about_Btrfs)).Trim().Split("`n")[0]
                """).AddArgument(args[0]);
            try
            {
                foreach (PSObject o in ps.Invoke())
                {
                    Console.WriteLine(o);
                }
            }
            catch (RuntimeException ex)
            {
                Console.Error.WriteLine(ex.Message);
                return 1;
            }

            foreach (ErrorRecord e in ps.Streams.Error)
            {
                Console.Error.WriteLine(e);
            }

            return ps.HadErrors ? 1 : 0;
        }
    }
}
