-- Commonsbox: members log in with the app passwords the box made for them (the same as
-- for mail). The agent writes the users and the passwords' salted SHA-512 hashes
-- (Dovecot's {SSHA512}) into commonsbox_auth_dir; accounts are made and removed only by
-- the box, never through XMPP.
local hashes = require "util.hashes";
local base64 = require "util.encodings".base64;
local new_sasl = require "util.sasl".new;

local dir = module:get_option_string("commonsbox_auth_dir");

local function lines(name)
	local out = {};
	local f = io.open(dir .. "/" .. name, "r");
	if not f then return out; end
	for line in f:lines() do
		local user, value = line:match("^([^:]+):(.*)$");
		if user then out[#out + 1] = { user = user, value = value }; end
	end
	f:close();
	return out;
end

local function password_ok(username, password)
	local ok = false;
	for _, entry in ipairs(lines("passwords")) do
		local encoded = entry.value:match("^{SSHA512}(.+)$");
		local raw = encoded and base64.decode(encoded);
		if entry.user == username and raw and #raw > 64 then
			local digest, salt = raw:sub(1, 64), raw:sub(65);
			ok = hashes.equals(hashes.sha512(password .. salt), digest) or ok;
		end
	end
	return ok;
end

local provider = {};

function provider.test_password(username, password)
	if password_ok(username, password) then return true; end
	return nil, "Auth failed. Invalid username or password.";
end

function provider.user_exists(username)
	for _, entry in ipairs(lines("users")) do
		if entry.user == username then return true; end
	end
	return nil, "Auth failed. Invalid username";
end

function provider.users()
	local names = {};
	for _, entry in ipairs(lines("users")) do names[#names + 1] = entry.user; end
	local i = 0;
	return function() i = i + 1; return names[i]; end;
end

function provider.get_password() return nil, "Passwords are not kept"; end
function provider.set_password() return nil, "App passwords are made by the box"; end
function provider.create_user() return nil, "Accounts are made by the box"; end
function provider.delete_user() return nil, "Accounts are removed by the box"; end

function provider.get_sasl_handler()
	return new_sasl(module.host, {
		plain_test = function(_, username, password)
			return password_ok(username, password), true;
		end;
	});
end

module:provides("auth", provider);
