/**
 * Settings → Crumbs: the "Test connection" button. It posts the form's current values to the
 * plugin's REST route (wp.apiFetch adds the REST nonce); the check runs on the WordPress server.
 */
( function ( wp ) {
	'use strict';
	var __ = wp.i18n.__;
	var button = document.getElementById( 'crumbs-test-connection' );
	var result = document.getElementById( 'crumbs-test-result' );
	if ( ! button || ! result ) {
		return;
	}
	function value( id ) {
		var input = document.getElementById( id );
		return input ? input.value : '';
	}
	button.addEventListener( 'click', function () {
		button.disabled = true;
		result.textContent = __( 'Checking…', 'crumbs' );
		result.style.color = '';
		wp.apiFetch( {
			path: '/crumbs/v1/test-connection',
			method: 'POST',
			data: {
				server_url: value( 'crumbs_server_url' ),
				app_id: value( 'crumbs_app_id' ),
				secret_key: value( 'crumbs_secret_key' ),
			},
		} )
			.then( function ( res ) {
				result.textContent = res.message;
				result.style.color = res.ok ? '#007017' : '#b32d2e';
				var library = document.getElementById( 'crumbs-library-url' );
				if ( library && res.libraryUrl ) {
					library.textContent = res.libraryUrl;
				}
				if ( res.keyNeeded ) {
					var key = document.getElementById( 'crumbs_secret_key' );
					if ( key ) {
						key.focus();
					}
				}
			} )
			.catch( function ( err ) {
				result.textContent = ( err && err.message ) || __( 'The check failed.', 'crumbs' );
				result.style.color = '#b32d2e';
			} )
			.then( function () {
				button.disabled = false;
			} );
	} );
} )( window.wp );
