-- VM snapshots (docs/hosts.md "Snapshots"): the built-in
-- VirtualMachinePowerUser role manages snapshots, as vSphere's does.
INSERT INTO role_privilege (role, privilege) VALUES
  (1, 'VirtualMachine.State.CreateSnapshot'),
  (1, 'VirtualMachine.State.RevertToSnapshot'),
  (1, 'VirtualMachine.State.RemoveSnapshot');
